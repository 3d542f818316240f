"""Every public 837 in ../shared/corpus: a scrubbed result or one clear file-level error."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import CORPUS, corpus_files
from pyx12_check import pyx12_valid

from scrubber.errors import InputError

FILES = corpus_files()

# The files the scrubber refuses, and why: other versions, other transactions, not X12.
REFUSED = {
    "azoner__pyx12__bad_2010AA_bug.txt": "version",
    "azoner__pyx12__simple_837i.txt": "version",
    "azoner__pyx12__simple_837p.txt": "version",
    "azoner__pyx12__trailer_errors.txt": "version",
    "imsweb__x12-parser__x12_bad_first_line.txt": "isa.width",
    "imsweb__x12-parser__x12_no_isa_line.txt": "not_x12",
    "kputnam__stupidedi__1.edi": "not_x12",
    "kputnam__stupidedi__claim-from-billing-provider-to-payer-a.edi": "version",
}


def _sources() -> dict[str, dict[str, str]]:
    with (CORPUS / "SOURCES.tsv").open(encoding="utf-8") as handle:
        return {row["saved_file"]: row for row in csv.DictReader(handle, delimiter="\t")}


SOURCES = _sources()


def test_the_corpus_is_all_here():
    # The brief counts 77 files; the folder holds 76 claim files, README.md and SOURCES.tsv.
    assert len(FILES) == 76
    assert {p.name for p in FILES} == set(SOURCES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_result_or_one_clear_file_level_error(path: Path, scrub, report_schema):
    data = path.read_bytes()
    try:
        result = scrub(data)
    except InputError as exc:
        assert REFUSED.get(path.name) == exc.code, f"{path.name} refused: {exc}"
        assert exc.message and (exc.segment is not None or exc.offset is not None)
        return
    assert path.name not in REFUSED, f"{path.name} should have been refused"
    report_schema.validate(result.report)
    summary = result.report["summary"]
    assert summary["claims"] == int(SOURCES[path.name]["claims"])
    assert summary["claims"] == summary["accepted"] + summary["corrected"] + summary["rejected"]
    if summary["accepted"] == summary["claims"]:
        assert result.corrected == data, "a file whose claims are all accepted comes out identical"
    if pyx12_valid(data):
        for output in (result.corrected, result.rejected):
            if output is not None:
                assert pyx12_valid(output), "a file that passed pyx12 must still pass once split"
    if result.corrected is None:
        assert summary["accepted"] + summary["corrected"] == 0


def test_files_that_pass_pyx12_and_draw_no_error_come_back_identical(scrub):
    checked = 0
    for path in FILES:
        data = path.read_bytes()
        if path.name in REFUSED or not pyx12_valid(data):
            continue
        result = scrub(data)
        errors = [f for c in result.report["claims"] for f in c["findings"] if f["severity"] == "error"]
        if not errors:
            assert result.corrected == data, path.name
            checked += 1
    # Most implementation-guide examples carry made-up NPIs whose check digit fails (C010), so
    # only some of them draw no error at all.
    assert checked >= 5


def test_accepted_claims_go_out_byte_for_byte(scrub):
    """Claim by claim: an accepted claim's segments are in the corrected file exactly as found."""
    checked = 0
    for path in FILES:
        if path.name in REFUSED:
            continue
        data = path.read_bytes()
        result = scrub(data)
        for claim in result.report["claims"]:
            if claim["disposition"] != "accepted":
                continue
            separator = data[data.index(b"ISA") + 3 : data.index(b"ISA") + 4]
            start = data.index(b"CLM" + separator + claim["claim_id"].encode() + separator)
            assert data[start : start + 60] in result.corrected, (path.name, claim["claim_id"])
            checked += 1
    assert checked >= 5


def test_structural_errors_are_attributed_to_claims_not_lost(scrub):
    """pyx12 finds errors in these deliberate-error files; each shows up on a claim or the file."""
    path = CORPUS / "imsweb__x12-parser__x12_segment_errors.txt"
    result = scrub(path.read_bytes())
    messages = [f["message"] for c in result.report["claims"] for f in c["findings"] if f["rule"] == "S001"]
    assert any('"N3"' in m or "N3" in m for m in messages)
    assert result.report["summary"]["rejected"] == 1


def test_report_is_plain_json(scrub):
    result = scrub((CORPUS / "kputnam__stupidedi__two-claims-for-the-same-provider.edi").read_bytes())
    assert json.loads(json.dumps(result.report)) == result.report
