"""What the speed and memory work of issue 11 §5 relies on: work done once per claim, nothing kept
that a claim of 100,000 lines would pay for a line at a time, the same bytes out."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import BinaryIO

from conftest import CORPUS, SAMPLES, TODAY, model_claims

from scrubber import FixMode, RunContext, scrub_stream
from scrubber.model.build import TransactionReader
from scrubber.model.claim import Claim, Field
from scrubber.output import corrected as corrected_module
from scrubber.output import report as report_module
from scrubber.output.corrected import ClaimFileWriter
from scrubber.output.report import JsonReport, claim_dict
from scrubber.output.sink import ScrubbedClaim, Sink
from scrubber.rules import engine, history_checks, lines
from scrubber.rules.findings import ClaimContext
from scrubber.rules.history import RunHistory
from scrubber.x12.tokenizer import Delimiters, Segment

BENCH = SAMPLES.parent / "bench"


def _claims(source: BinaryIO) -> list[tuple[Claim, Delimiters]]:
    """The claims of a file as the pipeline's model reads them (no validation)."""
    return model_claims(source)


def _many_lines(lines: int) -> bytes:
    sys.path.insert(0, str(BENCH))
    try:
        import pathological
    finally:
        sys.path.pop(0)
    return pathological.build("lines", lines).encode("ascii")


def test_a_fields_decimal_is_parsed_once():
    """Units and charges are read as numbers by several rules: the Decimal is made once."""
    units = Field("200", Segment(1, 0, "SV1*HC:J9032*10494.80*UN*200", "~"), "SV1", 4)
    assert units.decimal() == 200
    assert units.decimal() is units.decimal()
    assert Field("1E999999", units.segment, "SV1", 4).decimal() is not None
    assert Field("NaN", units.segment, "SV1", 4).decimal() is None
    assert Field("x", units.segment, "SV1", 4).decimal() is None


def test_a_lines_modifier_codes_are_read_once():
    """A dozen checks ask a line for its modifiers: the codes are gathered once, and stay right
    if a modifier is added after (the model appends them as it reads)."""
    claims = _claims(io.BytesIO((SAMPLES / "drugs_837p.837").read_bytes()))
    line = next(line for claim, _ in claims for line in claim.lines if line.modifiers)
    codes = line.modifier_codes
    assert codes == tuple(m.value for m in line.modifiers)
    assert line.modifier_codes is codes
    line.modifiers.append(Field("KX", line.modifiers[0].segment, "SV1", 1, 3))
    assert line.modifier_codes == (*codes, "KX")


def test_a_claims_profiled_lines_are_found_once_per_claim(rules, monkeypatch):
    """profiled_lines ran in each of the eleven checks that ask, twenty times a claim; then once
    a check pass. The checks across claims reuse what the last check found (LocalResult.drug_lines):
    claims are checked in batches, so "the claim asked last" no longer is the one they ask for."""
    calls = []
    real = lines.profiled_lines

    def counted(claim, rule_set):
        calls.append(claim)
        return real(claim, rule_set)

    monkeypatch.setattr(lines, "profiled_lines", counted)
    checked = 0
    for claim, d in _claims(io.BytesIO((SAMPLES / "clean_837p.837").read_bytes())):
        context = ClaimContext(rules, rules.policy_for(claim.payer_class_code, claim.payer_id_code),
                               RunHistory(), TODAY, d, 0)
        local = engine.check_claim_locally(claim, [], context)
        result = engine.settle_claim(local, context)
        assert result.final is claim  # the clean sample's claims go out as they came
        history_checks.doses_of(result.final, rules)  # as the pipeline records it
        assert history_checks.doses_of(result.final, rules) is history_checks.doses_of(result.final, rules)
        checked += 1
    assert checked > 3
    assert len(calls) == checked


def test_a_claims_segments_do_not_keep_their_split_elements():
    """A claim of many lines holds its segments: not also a list of elements for each of them."""
    (claim, _), = _claims(io.BytesIO(_many_lines(50)))
    assert len(claim.lines) == 50
    assert claim.lines[49].units.value == "1"
    assert all(segment._elements is None for segment in claim.segments)


def test_the_json_report_writes_a_claim_with_many_findings_as_json_dumps_would(rules, monkeypatch):
    """A claim's findings are streamed one by one, in pieces, to the very bytes of the whole dict."""
    monkeypatch.setattr(report_module, "_FLUSH_PARTS", 16)
    results = []

    class Keep(Sink):
        def claim(self, item: ScrubbedClaim) -> None:
            results.append(item.result)

    class Counting(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            Counting.writes += 1
            return super().write(text)

    text = Counting()
    report = JsonReport(text, "many.837", {})
    scrub_stream(io.BytesIO(_many_lines(60)), rules, [report, Keep()], FixMode.SAFE, run=RunContext.new(TODAY))
    (result,) = results
    assert len(result.findings) >= 59  # a duplicate line (U014) on every line after the first
    whole = json.dumps(claim_dict(result), separators=(",", ":"))
    assert whole in text.getvalue()
    assert Counting.writes > 4  # the claim went out in pieces, not as one string
    assert json.loads(text.getvalue())["claims"][0] == json.loads(whole)


def test_the_corrected_writer_writes_a_claim_at_once_and_the_same_bytes(rules, monkeypatch):
    """One write a claim, not one a segment; a file whose claims all go out comes out as it came."""
    data = (SAMPLES / "clean_837p.837").read_bytes()
    out = io.BytesIO()
    puts = []
    real = corrected_module.ClaimFileWriter._put

    def counted(self, text):
        puts.append(text)
        return real(self, text)

    monkeypatch.setattr(corrected_module.ClaimFileWriter, "_put", counted)
    summary = scrub_stream(io.BytesIO(data), rules, [ClaimFileWriter(out)], FixMode.SAFE, run=RunContext.new(TODAY))
    assert summary.accepted == summary.claims > 3
    assert out.getvalue() == data
    # A service line's segments never go out on their own: they go with their claim.
    assert not [text for text in puts if text.startswith(("LX*", "SV1*", "DTP*"))]


def test_bench_memory_measures_one_scrub_in_a_fresh_process(tmp_path):
    """bench/memory.py --child: the scrub of a file, its peak memory and time, as JSON."""
    path = tmp_path / "claims.837"
    subprocess.run([sys.executable, str(BENCH / "generate.py"), "20", str(path), "--per-transaction", "20"],
                   check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(BENCH / "memory.py"), "--child", str(path), "20"],
                          check=True, capture_output=True, text=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["claims"] == 20
    assert row["peak_rss_mib"] >= row["rss_after_import_mib"] > 0
    assert row["seconds"] > 0 and row["cpu_seconds"] > 0


def test_the_277ca_lets_go_of_each_transaction_sets_claims_at_its_end(rules):
    """per-set records kept till the end: a 277CA of 1,000,000 claims held every claim's status
    until finish(); each set's ST..SE now leaves memory (for a temporary file) when the set ends."""
    from scrubber.output.ack277 import Ack277CA
    from scrubber.output.sink import TransactionClosed

    sys.path.insert(0, str(BENCH))
    try:
        import generate
    finally:
        sys.path.pop(0)
    text = io.StringIO()
    generate.write_837(text, 30, per_transaction=10)  # three transaction sets
    out = io.BytesIO()
    ack = Ack277CA(out)
    spooled = []

    class Watch(Sink):
        def transaction_end(self, event: TransactionClosed) -> None:
            spooled.append((ack._spool.tell(), ack._reading))

    scrub_stream(io.BytesIO(text.getvalue().encode("ascii")), rules, [ack, Watch()], FixMode.SAFE,
                 run=RunContext.new(TODAY))
    assert len(spooled) == 3
    assert all(reading is None for _, reading in spooled)
    assert 0 < spooled[0][0] < spooled[1][0] < spooled[2][0]
    written = out.getvalue().decode("ascii")
    assert written.count("ST*277*") == 3 and written.count("TRN*2*C0") == 30
    assert written.startswith("ISA*") and written.rstrip().endswith("~")


def test_a_claims_report_head_is_written_as_the_json_encoder_writes_it():
    """Regression (issue 11, the claim's head written from its values rather than through a dict
    and the encoder): ids with quotes, backslashes, control and non-ASCII characters, a claim
    without CLM01, a segment number past the 32-bit range."""
    with (SAMPLES / "clean_837p.837").open("rb") as source:
        claim, _d = _claims(source)[0]
    for claim_id, segment in (('A"B\\C', 7), ("tab\there\x01", 2**40), ("caf\u00e9 \u202e", 1), ("", 3)):
        field = Field(claim_id, Segment(segment, 0, "CLM", "~"), "CLM", 1) if claim_id else None
        claim.claim_id = field
        for disposition in (engine.ACCEPTED, engine.CORRECTED, engine.REJECTED):
            result = engine.ClaimResult(claim, disposition, [])
            text = io.StringIO()
            JsonReport(text, "x", {}).write_claim(result)
            expected = json.dumps(claim_dict(result), separators=(",", ":"))
            assert text.getvalue().endswith(expected), (claim_id, disposition)


def test_the_cms_drug_checks_read_the_environment_once_a_claim(rules, monkeypatch):
    """Regression (issue 11, os.environ read for every line's CMS lookup): $SCRUBBER_DATA is read
    once a claim by the CMS drug checks, however many lines it has; the lookups still answer."""
    from scrubber.rules import cms_data, cms_drugs
    from scrubber.rules.findings import Findings

    (claim, d), = _claims(io.BytesIO(_many_lines(40)))
    context = ClaimContext(rules, rules.policy_for(claim.payer_class_code, claim.payer_id_code), None, TODAY, d, 0)
    cms_drugs.check(claim, rules, Findings(context, claim))  # the store opened, the lookups remembered
    reads = []

    class Counting(dict):
        def get(self, key, default=None):
            reads.append(key)
            return super().get(key, default)

    monkeypatch.setattr(cms_data.os, "environ", Counting(cms_data.os.environ))
    cms_drugs.check(claim, rules, Findings(context, claim))
    assert len(claim.lines) == 40
    assert reads.count(cms_data.DATA_ENV) == 1
    assert cms_data.cms_drugs()("J9032", claim.line_date(claim.lines[0])) is cms_data.cms_drug(
        "J9032", claim.line_date(claim.lines[0])) is not None


def test_a_payers_policy_is_made_once_and_each_claim_gets_its_own_payers(rules):
    """Regression (issue 11, a payer-id policy laid over its class's made twice a claim): the
    policy for a (payer class, payer id) is made once; another pair gets its own."""
    blue = rules.policy_for("CI", "EXBLUE01")
    assert rules.policy_for("CI", "EXBLUE01") is blue
    assert blue.name == "Example Blue Plan" and blue.prior_auth_by_payer_id and blue.quantity_limits
    commercial = rules.policy_for("CI", "OTHER")
    assert commercial.name == "Commercial (default)" and not commercial.prior_auth_by_payer_id
    assert rules.policy_for("MB", "EXBLUE01").name == "Example Blue Plan"
    assert rules.policy_for(None, None) is rules.policy_for(None, None)
    assert rules.policy_for("MB", None).name == "Medicare"


def test_an_error_in_the_transaction_header_reaches_its_claims_as_the_headers(scrub):
    """Regression (issue 11, _OpenSet.feed taking the loop it reads once a segment: an error in the
    header, where no claim or HL loop is open, was handed to the next claim as its own)."""
    report = scrub(CORPUS / "imsweb__x12-parser__x12_bad_segment_identifier.txt").report
    header = [f for c in report["claims"] for f in c["findings"] if f["rule"] == "S001" and f["segment"] < 8]
    assert header and all(f["message"].startswith("in the transaction header, shared with other claims: ")
                          for f in header)


def test_a_drugs_vial_sizes_are_found_once_and_a_drug_line_knows_its_discard(rules):
    """Regression (issue 11, a drug's vial sizes sorted anew and a line's JW looked for anew at each
    of a dozen checks): the sizes are found once a drug; a drug line says whether it is a discard
    (JW) from the moment it is made."""
    drug, _code = rules.drugs.by_code("J9032")
    assert drug.vial_sizes() and drug.vial_sizes() is drug.vial_sizes()
    found = [item for claim, _ in _claims(io.BytesIO((SAMPLES / "drugs_837p.837").read_bytes()))
             for item in lines.drug_lines_of(claim, rules)]
    assert {item.is_discard for item in found} == {True, False}
    assert all(item.is_discard == ("JW" in item.line.modifier_codes) for item in found)


def test_a_drug_line_reads_its_units_once(rules):
    """Regression (issue 11, a drug line's units read anew by the units, vial, ceiling and history
    checks, seven times a claim): a drug line carries its units from the moment it is made."""
    found = [item for claim, _ in _claims(io.BytesIO((SAMPLES / "drugs_837p.837").read_bytes()))
             for item in lines.drug_lines_of(claim, rules)]
    assert found and any(item.units is not None for item in found)
    assert all(item.units == lines.units_of(item.line) for item in found)


def test_the_cms_drug_checks_open_no_store_for_a_claim_without_a_lookup(rules, monkeypatch):
    """The reference data store is opened at a claim's first lookup (a claim with no HCPCS line
    opens none), as before the lookups were bound to a claim."""
    from scrubber.rules import cms_data

    opened = []
    monkeypatch.setattr(cms_data._STORE, "current", lambda: opened.append(1))
    lookup = cms_data.cms_drugs()
    assert lookup("J9032", None) is None and lookup("", TODAY) is None
    assert opened == []


def test_a_date_is_read_once_a_text_and_the_dates_kept_stay_bounded():
    """Claims name the same few days again and again: each text is read once; a file of endless
    distinct days does not fill memory with them."""
    from scrubber.model import claim as claim_module

    assert claim_module.parse_date("20261101") is claim_module.parse_date("20261101")
    assert claim_module.parse_date("20260230") is None  # (not a day: remembered as such)
    assert claim_module.parse_date("20260230") is None
    for day in range(claim_module._DATES_LIMIT + 10):
        claim_module.parse_date(f"{19000101 + day:08d}")
    assert len(claim_module._DATES) <= claim_module._DATES_LIMIT


def test_the_claim_model_reads_only_the_segments_that_say_something_it_keeps(monkeypatch):
    """N3, N4, PRV and the other segments of a claim that the model keeps nothing of are not
    handed to its reader (a third of a claim's segments), and the model is the same without them."""
    seen = []
    real = TransactionReader.claim_segment

    def spy(self, position, seg, elements, seg_id):
        seen.append(seg_id)
        return real(self, position, seg, elements, seg_id)

    monkeypatch.setattr(TransactionReader, "claim_segment", spy)
    data = (CORPUS / "imsweb__x12-parser__x12_complex.txt").read_bytes()
    claims = _claims(io.BytesIO(data))
    ids = {segment.text.split("*")[0] for claim, _ in claims for segment in claim.segments}
    assert {"N3", "N4", "PRV"} <= ids  # (in the claims: the service facility's loop, its provider)
    assert "LX" in seen and "SV1" in seen
    assert not {"N3", "N4", "PRV", "AMT"} & set(seen)
    # Every segment still belongs to its claim, and the lines, dates and NDCs are read.
    assert all(len(claim.segments) == claim.end - claim.first for claim, _ in claims)
    assert any(line.ndc is not None and line.service_date is not None for claim, _ in claims for line in claim.lines)


def test_a_scrub_with_its_guide_tables_cached_does_not_import_lxml(tmp_path):
    """Regression (issue 11, 6-10 ms of every run): lxml compiles a guide's maps, on a cache miss;
    a library scrub writing the corrected file and the JSON report never needs it otherwise."""
    script = (
        "import io, sys\n"
        "from scrubber import ClaimFileWriter, JsonReport, load_rules, scrub_stream\n"
        f"data = open({str(SAMPLES / 'clean_837p.837')!r}, 'rb').read()\n"
        "summary = scrub_stream(io.BytesIO(data), load_rules(), [ClaimFileWriter(io.BytesIO()), "
        "JsonReport(io.StringIO(), 'x', {})])\n"
        "print(summary.accepted, 'lxml' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert first.stdout.split() == ["7", "True"]  # the guide compiled from pyx12's maps, with lxml
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert again.stdout.split() == ["7", "False"]
