"""Issue 8, the pipeline's part: what a hostile sender's bytes did to the scrub, one test each.

Each test is named after the defect it holds down. Inputs are made from the bundled samples (real
837 structure) with one thing changed, so a failure points at that one thing.
"""

from __future__ import annotations

import csv
import io
import sys
import weakref

import pytest
from conftest import SAMPLES, TODAY, corpus_files, make_a_rule_raise
from lxml import html

import scrubber
from scrubber import FixMode, RunContext
from scrubber.errors import InputError
from scrubber.output import pipeline
from scrubber.output.files import make_sink
from scrubber.output.pipeline import scrub_stream
from scrubber.output.sink import ScrubbedClaim, Sink
from scrubber.x12.tokenizer import SegmentReader

CLEAN = (SAMPLES / "clean_837p.837").read_bytes()


def _segments(data: bytes) -> list[str]:
    reader = SegmentReader(io.BytesIO(data))
    return [reader.prefix + s.raw() if s.index == 1 else s.raw() for s in reader]


def _join(segments: list[str]) -> bytes:
    return "".join(segments).encode("latin-1")


def _clm_ids(data: bytes | None) -> list[str]:
    if not data:
        return []
    reader = SegmentReader(io.BytesIO(data))
    d = reader.delimiters
    return [s.elements(d)[1] for s in reader if s.elements(d)[0] == "CLM"]


def _all_outputs(data: bytes, rules) -> dict[str, object]:
    """Scrub with every renderer, in memory; returns each output's text or bytes and the summary."""
    streams: dict[str, io.BytesIO | io.StringIO] = {}
    sinks = []
    for kind in ("corrected", "rejected", "json", "html", "csv", "999", "277ca"):
        stream = io.StringIO() if kind in ("json", "csv") else io.BytesIO()
        streams[kind] = stream
        sinks.append(make_sink(kind, stream, "hostile.837", {"name": "scrubber"}))
    summary = scrub_stream(io.BytesIO(data), rules, sinks, run=RunContext.new(TODAY))
    return {"summary": summary, **{kind: stream.getvalue() for kind, stream in streams.items()}}


def _conserved(data: bytes, result: scrubber.Result) -> None:
    """Every CLM of the input is in the corrected file, the rejected file or the unattributed list."""
    given = sorted(_clm_ids(data))
    placed = _clm_ids(result.corrected) + _clm_ids(result.rejected)
    placed += [item["claim_id"] or "" for item in result.report["unattributed"]]
    assert sorted(placed) == given
    assert result.summary.claims == len(given)


@pytest.mark.parametrize("byte", [b"\x00", b"\x01", b"\x0b", b"\x1b"])
def test_control_byte_in_patient_name_or_claim_id_does_not_stop_any_output(rules, byte):
    data = CLEAN.replace(b"NM1*IL*1*DOE*JANE", b"NM1*IL*1*DO" + byte + b"E*JANE", 1)
    data = data.replace(b"CLM*P-OK-MEDICARE-JW", b"CLM*P-OK" + byte + b"-MEDICARE-JW", 1)
    assert data != CLEAN
    outputs = _all_outputs(data, rules)
    page = html.fromstring(outputs["html"])
    shown = page.text_content()
    assert f"\\x{byte[0]:02x}" in shown  # the clerk sees where the byte is
    assert b"\\x0a" not in outputs["html"]  # line breaks (the style sheet's) are left alone
    rows = list(csv.reader(io.StringIO(outputs["csv"])))
    assert all(byte.decode("latin-1") not in cell for row in rows for cell in row)
    assert outputs["summary"].claims == len(_clm_ids(CLEAN))


def test_unreadable_hl_segments_do_not_lose_the_claim(rules):
    # Every HL of the first transaction set mangled: the claims under them are still claims.
    segments = _segments(CLEAN)
    first_se = next(i for i, s in enumerate(segments) if s.startswith("SE*"))
    mangled = [s.replace("HL*", "HX*", 1) if i < first_se and s.startswith("HL*") else s
               for i, s in enumerate(segments)]
    data = _join(mangled)
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    _conserved(data, result)
    assert not any("no CLM" in e["message"] for e in result.errors)
    claims_in_first_set = _clm_ids(_join(segments[:first_se]))
    assert claims_in_first_set
    assert set(claims_in_first_set) <= set(_clm_ids(result.rejected))


def test_stray_clm_before_any_hl_is_counted_and_delivered(rules):
    segments = _segments(CLEAN)
    bht = next(i for i, s in enumerate(segments) if s.startswith("BHT*"))
    terminator = segments[bht][segments[bht].index("~"):]
    segments.insert(bht + 1, "CLM*STRAY-1*10***11:B:1*Y*A*Y*Y" + terminator)
    data = _join(segments)
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    _conserved(data, result)
    assert "STRAY-1" in _clm_ids(result.rejected)
    stray = next(c for c in result.claims if c.claim_id == "STRAY-1")
    assert stray.disposition == "rejected"


def test_npi_with_a_latin1_superscript_digit_is_a_finding_not_a_crash(rules):
    npi = b"1234567893"
    assert npi in CLEAN
    data = CLEAN.replace(npi, b"123456789\xb2", 1)  # \xb2 is a superscript two in Latin-1
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    _conserved(data, result)
    assert "S002" in {f.rule.id for f in result.findings}


def test_deep_hl_nesting_needs_no_recursion(rules):
    sys.path.insert(0, str(SAMPLES.parent / "bench"))
    try:
        import pathological
    finally:
        sys.path.pop(0)
    data = pathological.build("depth", 3000).encode("ascii")
    # Far below the nesting: any recursion over the HL tree would overflow here.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        outputs = _all_outputs(data, rules)
    finally:
        sys.setrecursionlimit(old)
    assert outputs["summary"].claims == 1
    # The claim goes out with its 3,001 HL loops renumbered and their parents pointed right.
    hls = [s for s in _segments(outputs["corrected"]) if s.startswith("HL*")]
    assert len(hls) == 3001
    assert hls[-1].startswith("HL*3001*3000*22*0")


def test_pyx12_raising_on_one_segment_rejects_that_claim_not_the_file(rules, monkeypatch):
    from pyx12.map_walker import walk_tree

    original = walk_tree.walk_errors
    target = "P-OK-MEDICARE-JZ"
    assert target.encode() in CLEAN

    def walk_errors(self, node, seg_data, *args):
        # pyx12's walker raising on one segment, as it does on some malformed ones.
        if seg_data.get_seg_id() == "CLM" and seg_data.get_value("CLM01") == target:
            raise IndexError("list index out of range")
        return original(self, node, seg_data, *args)

    monkeypatch.setattr(walk_tree, "walk_errors", walk_errors)
    # pyx12's walker runs only as the second opinion since the compiled validator (issue 11)
    result = scrubber.scrub(CLEAN, rules=rules, run=RunContext.new(TODAY), validator="pyx12")
    _conserved(CLEAN, result)
    by_id = {c.claim_id: c for c in result.claims}
    assert by_id[target].disposition == "rejected"
    assert any("could not read this segment" in f.message for f in by_id[target].findings)
    assert [c.claim_id for c in result.claims if c.disposition == "rejected"] == [target]


def test_the_compiled_validator_raising_on_one_segment_rejects_that_claim_not_the_file(rules, monkeypatch):
    from scrubber.x12.guide import validator
    from scrubber.x12.guide.walker import Walker

    # The validator replays a text it placed before (its memo lasts the process): an earlier test
    # scrubbed the same claims, so the walk would not be called for them at all.
    monkeypatch.setattr(validator, "_PLACED", {})
    original = Walker.walk
    target = "P-OK-MEDICARE-JZ"

    def walk(self, node, seg_id, parts):
        if seg_id == "CLM" and parts[1] == target:
            raise IndexError("list index out of range")
        return original(self, node, seg_id, parts)

    monkeypatch.setattr(Walker, "walk", walk)
    result = scrubber.scrub(CLEAN, rules=rules, run=RunContext.new(TODAY))
    _conserved(CLEAN, result)
    by_id = {c.claim_id: c for c in result.claims}
    assert by_id[target].disposition == "rejected"
    assert any("could not read this segment" in f.message for f in by_id[target].findings)
    assert [c.claim_id for c in result.claims if c.disposition == "rejected"] == [target]


def test_leading_spaces_before_gs_name_the_segment_and_reject_its_claims(rules):
    segments = _segments(CLEAN)
    gs = next(i for i, s in enumerate(segments) if s.startswith("GS*"))
    segments[gs] = "  " + segments[gs]
    data = _join(segments)
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))  # not refused as "GS outside"
    _conserved(data, result)
    assert all(c.disposition == "rejected" for c in result.claims)
    assert any("leading space" in f.message for c in result.claims for f in c.findings)


def test_leading_spaces_inside_a_set_reject_only_that_claim(rules):
    data = CLEAN.replace(b"CLM*P-OK-MEDICARE-JZ", b" CLM*P-OK-MEDICARE-JZ", 1)
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    rejected = [c for c in result.claims if c.disposition == "rejected"]
    assert len(rejected) == 1


def test_s001_message_never_starts_with_a_line_break(rules):
    found = []
    for path in corpus_files():
        try:
            result = scrubber.scrub(path.read_bytes(), rules=rules, run=RunContext.new(TODAY))
        except InputError:
            continue
        found += [f.message for f in result.findings if f.rule.id == "S001"]
    assert found
    assert not [m for m in found if not m.isprintable()]


def test_an_error_noticed_at_se_reaches_the_first_claim_of_the_set(rules):
    # Pass 2 streams claims; a problem on the SE (here a byte outside ASCII) is known from pass 1.
    segments = _segments(CLEAN)
    se = next(i for i, s in enumerate(segments) if s.startswith("SE*"))
    segments[se] = segments[se].replace("SE*", "SE*\xe9", 1)
    result = scrubber.scrub(_join(segments), rules=rules, run=RunContext.new(TODAY))
    first_set = _clm_ids(_join(segments[:se]))
    by_id = {c.claim_id: c for c in result.claims}
    assert first_set and all(by_id[claim].disposition == "rejected" for claim in first_set)


def test_input_that_changes_between_the_passes_is_refused(rules):
    class Growing(io.BytesIO):
        reads = 0

        def seek(self, *args):
            # The sender appends while the first pass runs: the second pass sees other bytes.
            self.getbuffer()[200:201] = b"X"
            return super().seek(*args)

    with pytest.raises(InputError) as caught:
        scrub_stream(Growing(CLEAN), rules, [], run=RunContext.new(TODAY))
    assert caught.value.code == "input.changed"


def test_regression_input_that_loses_a_segment_between_the_passes_is_refused_as_changed(rules):
    """Pass 2 reads a set's body by pass 1's count of its segments: when the input changed in
    between so that a set is shorter (two segments run together), what pass 2 trips on (a GE
    before the SE) is the change, and is reported as such."""
    terminator = CLEAN.index(b"~", CLEAN.index(b"CLM*"))

    class Shrinking(io.BytesIO):
        def seek(self, *args):
            self.getbuffer()[terminator:terminator + 1] = b"*"
            return super().seek(*args)

    with pytest.raises(InputError) as caught:
        scrub_stream(Shrinking(CLEAN), rules, [], run=RunContext.new(TODAY))
    assert caught.value.code == "input.changed"


@pytest.fixture
def rule_fault(monkeypatch):
    """The rules raise on one claim of the clean sample, as a bug in a rule would."""
    make_a_rule_raise(monkeypatch, "P-OK-MEDICARE-JZ")


def test_a_fault_in_the_rules_holds_back_that_claim_only(rules, monkeypatch):
    """The claims are checked in batches, each rule over the whole batch (engine.check_claims_locally):
    a rule that raises on one claim stops that claim's checks, and the others come out as they
    would have without it."""
    alone = scrubber.scrub(CLEAN, rules=rules, run=RunContext.new(TODAY)).report["claims"]
    make_a_rule_raise(monkeypatch, "P-OK-MEDICARE-JZ")
    result = scrubber.scrub(CLEAN, rules=rules, run=RunContext.new(TODAY))
    _conserved(CLEAN, result)
    assert [item["claim_id"] for item in result.report["unattributed"]] == ["P-OK-MEDICARE-JZ"]
    assert "ZeroDivisionError" in result.report["unattributed"][0]["reason"]
    assert result.summary.undelivered == 1
    assert result.report["claims"] == [claim for claim in alone if claim["claim_id"] != "P-OK-MEDICARE-JZ"]


def _alive_at_each_claim(rules, claims: int, sizes: list[int] | None = None) -> list[int]:
    """How many earlier claims' results are still held when each claim reaches the outputs, in a
    generated set of `claims` claims (and each claim's segments, into `sizes`)."""
    seen: list[weakref.ref] = []
    alive_at_each_claim: list[int] = []

    class Watch(Sink):
        def claim(self, item: ScrubbedClaim) -> None:
            alive_at_each_claim.append(sum(ref() is not None for ref in seen))
            seen.append(weakref.ref(item.result))
            if sizes is not None:
                sizes.append(len(item.result.claim.segments))

    sys.path.insert(0, str(SAMPLES.parent / "bench"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    out = io.StringIO()
    generate.write_837(out, claims, per_transaction=claims)  # one transaction set
    scrub_stream(io.BytesIO(out.getvalue().encode("ascii")), rules, [Watch()], FixMode.SAFE,
                 run=RunContext.new(TODAY))
    assert len(alive_at_each_claim) == claims
    return alive_at_each_claim


def test_memory_holds_a_batch_of_claims_at_a_time(rules):
    """Each claim's model is freed once the outputs have it and its batch is done (pipeline.BATCH_CLAIMS):
    memory does not follow the set."""
    alive = _alive_at_each_claim(rules, 300)
    assert max(alive) == pipeline.BATCH_CLAIMS - 1  # the claims before it in its batch
    assert alive[pipeline.BATCH_CLAIMS] == 0  # the first claim of the next batch: the first batch is freed


def test_a_batch_holds_a_bounded_number_of_segments(rules, monkeypatch):
    """Large claims make short batches (pipeline.BATCH_SEGMENTS): memory is bounded by the largest
    claim, not by a number of claims."""
    monkeypatch.setattr(pipeline, "BATCH_SEGMENTS", 40)  # the generated claims have 7 to 16 segments
    sizes: list[int] = []
    alive = _alive_at_each_claim(rules, 100, sizes)
    starts = [i for i, held in enumerate(alive) if held == 0]
    batches = [sizes[start:end] for start, end in zip(starts, [*starts[1:], len(sizes)], strict=True)]
    assert len(batches) > 100 // 8
    for batch in batches:  # full once it reached 40 segments: only its last claim took it there
        assert sum(batch[:-1]) < 40 <= sum(batch) or batch is batches[-1]


@pytest.mark.parametrize("mode", [FixMode.SAFE, FixMode.UNSAFE])
def test_claims_checked_in_batches_come_out_as_checked_one_at_a_time(rules, monkeypatch, mode):
    """Batches (pipeline.BATCH_CLAIMS, each rule over the whole batch) change no output: every
    sample, fixes and all, and a set of 150 generated claims, against batches of one claim."""
    sys.path.insert(0, str(SAMPLES.parent / "bench"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    generated = io.StringIO()
    generate.write_837(generated, 150, per_transaction=150)
    inputs = [path.read_bytes() for path in sorted(SAMPLES.glob("*.837"))]
    inputs.append(generated.getvalue().encode("ascii"))

    def outputs() -> list[tuple]:
        found = []
        for data in inputs:
            result = scrubber.scrub(data, rules=rules, fix=mode, run=RunContext.new(TODAY))
            found.append((result.report["claims"], result.report["summary"], result.corrected, result.rejected))
        return found

    batched = outputs()
    monkeypatch.setattr(pipeline, "BATCH_CLAIMS", 1)
    assert outputs() == batched


def test_every_corpus_file_and_sample_conserves_its_claims(rules):
    for path in [*corpus_files(), *sorted(SAMPLES.glob("*.837"))]:
        data = path.read_bytes()
        try:
            result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
        except InputError:
            continue
        _conserved(data, result)


def test_a_claim_the_rules_failed_on_makes_the_cli_exit_4(rules, rule_fault, monkeypatch, tmp_path, capsys):
    from scrubber.cli import main

    monkeypatch.setattr(sys, "argv", ["scrubber", "scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path),
                                      "-q", "--today", TODAY.isoformat()])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 4
    assert "1 not checked" in capsys.readouterr().out


def test_a_claim_with_thousands_of_bad_segments_lists_the_first_hundred_and_counts_the_rest(rules):
    sys.path.insert(0, str(SAMPLES.parent / "bench"))
    try:
        import pathological
    finally:
        sys.path.pop(0)
    data = pathological.build("segments", 1000).encode("ascii")  # 1,000 NTE in a loop that allows none
    result = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    (claim,) = result.claims
    syntax = [f for f in claim.findings if f.rule.id == "S001"]
    assert len(syntax) == 101
    (more,) = [f for f in syntax if "900 more implementation-guide errors" in f.message]  # 1,000 in all
    # What a clerk can do about the rest; the 999 does not name a segment whose id X12 does not know.
    assert "fix them and scrub again for the rest" in more.message and "names them all" not in more.message


def _scrubbed_twice(data: bytes, rules) -> tuple[scrubber.Result, scrubber.Result | None]:
    first = scrubber.scrub(data, rules=rules, run=RunContext.new(TODAY))
    again = scrubber.scrub(first.corrected, rules=rules, run=RunContext.new(TODAY)) if first.corrected else None
    return first, again


def test_an_hl02_naming_no_open_loop_rejects_its_claims_and_keeps_the_loops_above(rules):
    # HL*2's parent is HL 1, but the billing provider loop above it is numbered 9.
    data = CLEAN.replace(b"HL*1**20*1~", b"HL*9**20*1~", 1)
    first, again = _scrubbed_twice(data, rules)
    _conserved(data, first)
    hl2 = next(c for c in first.claims if c.disposition == "rejected")
    assert any("HL02 names HL '1'" in f.message for f in hl2.findings)
    # The rejected claim goes back with its billing provider loop, renumbered.
    assert first.rejected is not None and b"NM1*85*2*EXAMPLE ONCOLOGY ASSOCIATES" in first.rejected
    assert again is None or all(c.disposition == "accepted" for c in again.claims)


def test_a_claim_inside_the_transaction_header_holds_back_its_set(rules):
    segments = _segments(CLEAN)
    bht = next(i for i, s in enumerate(segments) if s.startswith("BHT*"))
    terminator = segments[bht][segments[bht].index("~"):]
    segments.insert(bht + 1, "CLM*STRAY-2*10***11:B:1*Y*A*Y*Y" + terminator)  # before NM1*41 and NM1*40
    data = _join(segments)
    first, again = _scrubbed_twice(data, rules)
    _conserved(data, first)
    first_se = next(i for i, s in enumerate(segments) if s.startswith("SE*"))
    in_set = _clm_ids(_join(segments[:first_se]))
    assert all(c.disposition == "rejected" for c in first.claims if c.claim_id in in_set)
    assert again is None or all(c.disposition == "accepted" for c in again.claims)


def test_a_claim_without_a_service_line_never_goes_out(rules):
    segments = _segments(CLEAN)
    clm = next(i for i, s in enumerate(segments) if s.startswith("CLM*"))
    terminator = segments[clm][segments[clm].index("~"):]
    segments.insert(clm, "CLM*BARE-2*100***11:B:1*Y*A*Y*Y" + terminator)  # right before another CLM
    data = _join(segments)
    first, again = _scrubbed_twice(data, rules)
    bare = next(c for c in first.claims if c.claim_id == "BARE-2")
    assert bare.disposition == "rejected"
    assert again is None or all(c.disposition == "accepted" for c in again.claims)


def test_a_refusal_message_is_one_printable_line():
    data = CLEAN.replace(b"GE*", b"GE\x1b*", 1)
    with pytest.raises(InputError) as caught:
        scrubber.scrub(data)
    assert caught.value.message.isprintable() and "\\x1b" in caught.value.message
