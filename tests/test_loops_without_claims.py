"""An HL loop that ends holding no claim (a subscriber loop whose CLM, and all that follows it, is
missing from the input) is in neither 837: a loop goes out only above a claim. It was dropped
without a word, and with it the guide's errors in its segments: the 999 rejected the set for them
while the report said every claim was accepted and named no error. Now the set's report says which
loops hold no claim, where, and with which errors; two jobs, by sets or in chunks, say the same."""

from __future__ import annotations

import json

from conftest import SAMPLES
from test_chunks import assert_same_in_chunks, by_chunk  # noqa: F401 (a fixture)
from test_sets import _cli, _defects, _interchange, _set_text, assert_same_as_one_job, by_set  # noqa: F401 (a fixture)

from scrubber.output import loops_without_claims

CLEAN_P = (SAMPLES / "clean_837p.837").read_bytes()
CLEAN_I = (SAMPLES / "clean_837i.837").read_bytes()


def _segments(data: bytes) -> list[bytes]:
    return [seg for seg in data.split(b"~") if seg.strip()]


def _without_claims(data: bytes, *claim_ids: str, damage: bytes = b"") -> bytes:
    """`data` with each claim of `claim_ids` taken out, from its CLM up to the next HL or the SE
    (its subscriber loop stays), SE01 counted again; `damage` ("old|new") edits the first segment
    that starts with old in the HL loop of the first claim taken out."""
    out: list[bytes] = []
    dropping = False
    last_hl = loop_of_first = None
    for seg in _segments(data):
        text = seg.strip()
        if text.startswith((b"HL*", b"SE*")):
            dropping = False
            last_hl = len(out)
        if text.startswith(b"CLM*") and text.split(b"*")[1].decode() in claim_ids:
            dropping = True
            if loop_of_first is None:
                loop_of_first = last_hl
        if not dropping:
            out.append(seg)
    if damage:
        old, new = damage.split(b"|")
        at = next(n for n in range(loop_of_first, len(out)) if out[n].strip().startswith(old))
        out[at] = out[at].replace(old, new, 1)
    for n, seg in enumerate(out):
        if seg.strip().startswith(b"ST*"):
            st = n
        elif seg.strip().startswith(b"SE*"):
            control = seg.strip().split(b"*")[2]
            out[n] = seg[: seg.index(b"SE*")] + b"SE*%d*" % (n - st + 1) + control
    return b"~".join(out) + b"~" + (b"\n" if data.endswith(b"\n") else b"")


def _index_of(data: bytes, start: bytes) -> int:
    """The segment number (ISA is 1) of the first segment that starts with `start`."""
    return next(n for n, seg in enumerate(_segments(data), 1) if seg.strip().startswith(start))


def _loop_errors(report: dict) -> list[dict]:
    return [e for e in report["errors"] if e["code"] == "loop.no_claims"]


def test_a_subscriber_loop_left_with_no_claim_is_named_and_the_claims_go_out(scrub):
    data = _without_claims(CLEAN_P, "P-OK-MEDICARE-JZ")
    result = scrub(data)
    summary = result.report["summary"]
    assert (summary["claims"], summary["accepted"], summary["rejected"]) == (6, 6, 0)
    [entry] = _loop_errors(result.report)
    assert entry["segment"] == _index_of(data, b"HL*3*") and entry["fixed"] is False
    assert entry["offset"] == data.index(b"HL*3*")
    assert entry["message"].startswith("an HL loop holds no claim (no CLM in it or in a loop below it): it is in "
                                       "neither 837 written, and if a claim belongs there, that claim is missing")
    assert entry["message"].endswith(f"the subscriber loop (HL 3) at segment {entry['segment']}")
    # The loop goes in neither file: no claim hangs under it.
    assert b"MBR000002" not in result.corrected and not result.rejected
    assert [e["code"] for e in result.report["errors"]] == ["loop.no_claims"]


def test_the_guide_s_errors_in_a_loop_with_no_claim_are_in_the_report_as_in_the_999(tmp_path, monkeypatch):
    data = _without_claims(CLEAN_P, "P-OK-MEDICARE-JZ", damage=b"NM1*IL*1*|NM1*IL*X*")
    nm1 = _index_of(data, b"NM1*IL*X*")
    path = tmp_path / "damaged.837"
    path.write_bytes(data)
    code, _text, files = _cli(tmp_path, monkeypatch, [path], 1, outputs="json,999")
    report = json.loads(files["damaged.report.json"])
    [entry] = _loop_errors(report)
    assert f"(implementation-guide errors in it: segment {nm1} NM1: " in entry["message"]
    assert (code, report["summary"]["accepted"], report["summary"]["rejected"]) == (0, 6, 0)
    # The 999 rejects the set for that segment (IK302 counts from the ST, the file's third segment);
    # before, the report named it nowhere.
    assert f"IK3*NM1*{nm1 - 2}*".encode() in files["damaged.999"] and b"IK5*R" in files["damaged.999"]


def test_several_loops_are_one_entry_with_the_first_described_and_every_one_counted(scrub):
    ids = ["P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL", "P-OK-MEDICAID", "P-OK-CHEMO-Z51"]
    data = _without_claims(CLEAN_P, *ids)
    result = scrub(data)
    [entry] = _loop_errors(result.report)
    assert entry["message"].startswith("5 HL loops hold no claim")
    assert entry["message"].count("at segment") == loops_without_claims.SHOWN_LOOPS
    assert entry["message"].endswith(f" (and {5 - loops_without_claims.SHOWN_LOOPS} more)")
    assert entry["segment"] == _index_of(data, b"HL*2*")
    assert result.report["summary"]["accepted"] == 2


def test_a_set_with_no_claim_at_all_is_named_once_as_such(scrub):
    ids = ["P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL", "P-OK-MEDICAID", "P-OK-DEPENDENT",
           "P-OK-CHEMO-Z51", "P-OK-NO-DRUG"]
    result = scrub(_without_claims(CLEAN_P, *ids))
    assert [e["code"] for e in result.report["errors"]] == ["transaction.no_claims"]


def test_an_837i_subscriber_loop_with_no_claim(scrub):
    first = next(seg for seg in _segments(CLEAN_I) if seg.strip().startswith(b"CLM*"))
    claim_id = first.strip().split(b"*")[1].decode()
    result = scrub(_without_claims(CLEAN_I, claim_id))
    [entry] = _loop_errors(result.report)
    assert "the subscriber loop (HL 2) at segment" in entry["message"]


def test_a_patient_loop_with_no_claim_is_named_not_its_subscriber_loop(scrub):
    # P-OK-DEPENDENT hangs under a patient loop (HL 23) under its subscriber's (HL 22).
    result = scrub(_without_claims(CLEAN_P, "P-OK-DEPENDENT"))
    [entry] = _loop_errors(result.report)
    assert "the patient loop (HL " in entry["message"] and "subscriber loop" not in entry["message"]


def test_quiet_on_every_sample(samples):
    assert len(samples) >= 6
    named = {name: len(_loop_errors(result.report)) for name, result in samples.items()}
    assert named == dict.fromkeys(samples, 0)


def test_the_lint_lines_name_the_loop(tmp_path, monkeypatch):
    path = tmp_path / "dropped.837"
    path.write_bytes(_without_claims(CLEAN_P, "P-OK-MEDICARE-JZ"))
    code, text, files = _cli(tmp_path, monkeypatch, [path], 1)
    assert code == 0
    assert "the subscriber loop (HL 3) at segment" in text
    assert b"the subscriber loop (HL 3) at segment" in files["dropped.report.html"]


def _inputs(tmp_path) -> list:
    cases = {
        "one.837": _without_claims(CLEAN_P, "P-OK-MEDICARE-JZ", damage=b"NM1*IL*1*|NM1*IL*X*"),
        "five.837": _without_claims(CLEAN_P, "P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL",
                                    "P-OK-MEDICAID", "P-OK-CHEMO-Z51"),
        "last.837": _without_claims(CLEAN_P, "P-OK-NO-DRUG"),
        "dependent.837": _without_claims(CLEAN_P, "P-OK-DEPENDENT"),
    }
    paths = []
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_loops_with_no_claim_come_out_the_same_in_chunks(tmp_path, monkeypatch, by_chunk):  # noqa: F811
    # Chunks of one subscriber loop: the loops with no claim end at the cuts, or inside a chunk.
    files = assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, _inputs(tmp_path))
    report = json.loads(files["five.report.json"])
    assert _loop_errors(report)[0]["message"].startswith("5 HL loops hold no claim")


def test_loops_with_no_claim_come_out_the_same_by_sets(tmp_path, monkeypatch, by_set):  # noqa: F811
    # Three sets of two or three claims, one set a job: loops with no claim in the first and last.
    sets = [_set_text(_defects(*ids), control) for control, ids in enumerate(
        [("P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL"), ("P-OK-MEDICAID", "P-OK-DEPENDENT"),
         ("P-OK-CHEMO-Z51", "P-OK-NO-DRUG")], start=31)]
    data = _interchange([sets], 803).encode("latin-1")
    path = tmp_path / "sets.837"
    path.write_bytes(_without_claims(data, "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL", "P-OK-NO-DRUG"))
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    report = json.loads(files["sets.report.json"])
    assert [e["message"][:30] for e in _loop_errors(report)] == ["2 HL loops hold no claim (no C",
                                                                 "an HL loop holds no claim (no "]
    assert (report["summary"]["claims"], report["summary"]["accepted"]) == (4, 4)
