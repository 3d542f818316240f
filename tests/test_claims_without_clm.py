"""A claim whose CLM is damaged (CLX) or missing leaves its segments in the subscriber loop above
it, a loop that then holds no claim. They were dropped with that loop: the claim was in neither
837 nor the report, and the errors the validator reported late for them (at the next HL or at the
SE) rejected the claim after it, or every claim of the set. Now they are delivered as a claim with
no CLM, rejected with the reason; the claims around it are judged on their own, and two jobs, by
sets or in chunks, give the same outputs."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES
from test_chunks import assert_same_in_chunks, by_chunk  # noqa: F401 (a fixture)
from test_sets import _cli, _defects, _interchange, _set_text, assert_same_as_one_job, by_set  # noqa: F401 (a fixture)

CLEAN_P = (SAMPLES / "clean_837p.837").read_bytes()
CLEAN_I = (SAMPLES / "clean_837i.837").read_bytes()
CLEAN_P_IDS = ["P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL", "P-OK-MEDICAID", "P-OK-DEPENDENT",
               "P-OK-CHEMO-Z51", "P-OK-NO-DRUG"]


def _damaged(data: bytes, claim_id: str, new_id: bytes = b"CLX") -> bytes:
    """`data` with the CLM of `claim_id` given another segment id (b"": the CLM deleted)."""
    start = data.index(b"CLM*" + claim_id.encode() + b"*")
    if new_id:
        return data[:start] + new_id + data[start + 3:]
    end = data.index(b"~", start) + 1
    while data[end:end + 1] in (b"\r", b"\n"):
        end += 1
    return data[:start] + data[end:]


def _without_clm(report: dict) -> list[dict]:
    return [c for c in report["claims"] if c["segment"] is None]


def _dispositions(report: dict) -> dict[str, str]:
    return {c["claim_id"]: c["disposition"] for c in report["claims"] if c["segment"] is not None}


def _messages(claim: dict) -> list[str]:
    return [f["message"] for f in claim["findings"]]


def test_a_damaged_clm_inside_a_set_is_a_rejected_claim_and_the_others_go_out(scrub):
    result = scrub(_damaged(CLEAN_P, "P-OK-MEDICARE-JZ"))
    summary = result.report["summary"]
    assert (summary["claims"], summary["accepted"], summary["rejected"]) == (7, 6, 1)
    [orphan] = _without_clm(result.report)
    assert orphan["disposition"] == "rejected" and orphan["claim_id"] == ""
    messages = _messages(orphan)
    assert messages[0].startswith('Mandatory segment "Claim Information" (CLM) missing: the subscriber loop (HL 3) '
                                  "holds no claim")
    assert "from CLX on" in messages[0]
    assert any("Segment CLX*P-OK-MEDICARE-JZ not found" in m for m in messages)
    # The LX numbering error the validator reports at the next HL is this claim's, not the next's.
    assert any("LX01 Service Line Number 1 does not match my count of 3" in m for m in messages)
    # Only what the guide says: no rule reads segments that may not be one claim.
    assert {f["rule"] for f in orphan["findings"]} == {"S001"}
    assert _dispositions(result.report) == {i: "accepted" for i in CLEAN_P_IDS if i != "P-OK-MEDICARE-JZ"}
    # Its segments go to the rejected file, under its own subscriber, as they came; none goes out.
    assert b"CLX*P-OK-MEDICARE-JZ*" in result.rejected and b"MBR000002" in result.rejected
    assert b"SV1*HC:J9032:JZ*10494.80*UN*200***1~" in result.rejected
    assert b"CLX" not in result.corrected and b"MBR000002" not in result.corrected


def test_a_damaged_last_clm_no_longer_rejects_the_whole_set(scrub):
    # Its errors were reported at the SE, and reached every claim of the set.
    result = scrub(_damaged(CLEAN_P, "P-OK-NO-DRUG"))
    assert _dispositions(result.report) == {i: "accepted" for i in CLEAN_P_IDS if i != "P-OK-NO-DRUG"}
    [orphan] = _without_clm(result.report)
    assert orphan["disposition"] == "rejected"
    assert any("does not match my count of 2" in m for m in _messages(orphan))
    assert b"CLX*P-OK-NO-DRUG*" in result.rejected


def test_an_invalid_segment_id_in_place_of_the_last_clm_is_that_claim_s_error(scrub):
    # The id "C" is invalid: the validator reports it at the SE, where it reached every claim.
    result = scrub(_damaged(CLEAN_P, "P-OK-NO-DRUG", b"C"))
    [orphan] = _without_clm(result.report)
    assert any('Segment identifier "C" is invalid' in m for m in _messages(orphan))
    assert result.report["summary"]["accepted"] == 6


@pytest.mark.parametrize("claim_id", ["P-OK-MEDICARE-JZ", "P-OK-NO-DRUG"], ids=["inside", "last"])
def test_white_space_before_a_damaged_clm_is_that_claim_s_error(scrub, claim_id):
    # " CLX": the validator reports the leading space at the next segment it places, an HL or the
    # SE, where it rejected the claim after it, or every claim of the set.
    result = scrub(_damaged(CLEAN_P, claim_id, b" CLX"))
    [orphan] = _without_clm(result.report)
    assert any("Segment contains a leading space" in m for m in _messages(orphan))
    assert _dispositions(result.report) == {i: "accepted" for i in CLEAN_P_IDS if i != claim_id}


def test_white_space_before_the_se_itself_still_reaches_every_claim(scrub):
    at = CLEAN_P.rindex(b"SE*")
    result = scrub(CLEAN_P[:at] + b" " + CLEAN_P[at:])
    assert not _without_clm(result.report)
    assert set(_dispositions(result.report).values()) == {"rejected"}
    for claim in result.report["claims"]:
        assert any("transaction header" in m and "leading space" in m for m in _messages(claim))


def test_a_deleted_clm_leaves_a_claim_with_no_clm_from_its_first_segment(scrub):
    result = scrub(_damaged(CLEAN_P, "P-OK-COMMERCIAL", b""))
    [orphan] = _without_clm(result.report)
    # (The REF*G1 before it is a REF of the payer's loop, with a qualifier the guide does not give
    # it there: the validator's error stays the loop's, which the claim with no CLM hangs under.)
    messages = _messages(orphan)
    assert any("from HI on" in m for m in messages) and any("REF*G1 not found" in m for m in messages)
    assert result.report["summary"]["claims"] == 7 and result.report["summary"]["accepted"] == 6


def test_an_837i_claim_with_a_damaged_clm(scrub):
    first = CLEAN_I[CLEAN_I.index(b"CLM*") + 4:].split(b"*", 1)[0].decode()
    result = scrub(_damaged(CLEAN_I, first))
    [orphan] = _without_clm(result.report)
    assert orphan["disposition"] == "rejected"
    assert result.report["summary"]["accepted"] == 1
    assert b"CLX*" + first.encode() in result.rejected


def test_a_stray_segment_before_a_loop_s_claim_still_rejects_that_claim(scrub):
    # An unknown segment inside a subscriber loop that goes on to hold its claim is the loop's:
    # the claim is rejected for it, and no claim without a CLM is made of the loop's segments.
    at = CLEAN_P.index(b"DMG*", CLEAN_P.index(b"MBR000002"))
    result = scrub(CLEAN_P[:at] + b"ZZZ*1~\n" + CLEAN_P[at:])
    assert not _without_clm(result.report)
    dispositions = _dispositions(result.report)
    assert dispositions.pop("P-OK-MEDICARE-JZ") == "rejected"
    assert set(dispositions.values()) == {"accepted"}


def _two_providers() -> bytes:
    """The clean 837P's first two claims under billing providers of their own (HL 1 and HL 4), the
    first provider's loop with a segment it does not have (NTE) and its claim's CLM damaged: two
    loops with strays and no claim end at one HL."""
    segments = CLEAN_P.split(b"~\n")
    at = {seg.split(b"*")[0] + b"*" + seg.split(b"*")[1]: n for n, seg in enumerate(segments) if seg.startswith(b"HL*")}
    provider = segments[at[b"HL*1"]:at[b"HL*2"]]
    first = [b"CLX" + seg[3:] if seg.startswith(b"CLM*") else seg for seg in segments[at[b"HL*2"]:at[b"HL*3"]]]
    second = segments[at[b"HL*3"]:at[b"HL*4"]]
    body = [*provider, b"NTE*ADD*A NOTE NO LOOP HERE HOLDS", *first,
            b"HL*3**20*1", *provider[1:], b"HL*4*3*22*0", *second[1:]]
    head = segments[:at[b"HL*1"]]
    count = len(body) + len(head) - 2 + 1  # ST to SE: the head after ISA and GS, the body, the SE
    tail = [b"SE*%d*0101" % count, b"GE*1*101", b"IEA*1*000000101", b""]
    return b"~\n".join([*head, *body, *tail])


def test_two_loops_with_strays_and_no_claim_ending_at_one_hl_are_two_claims_with_no_clm(scrub):
    result = scrub(_two_providers())
    orphans = _without_clm(result.report)
    assert [o["disposition"] for o in orphans] == ["rejected", "rejected"]
    assert "billing provider loop (HL 1) holds no claim" in _messages(orphans[0])[0]
    assert "from NTE on" in _messages(orphans[0])[0]
    assert "subscriber loop (HL 2) holds no claim" in _messages(orphans[1])[0]
    assert _dispositions(result.report) == {"P-OK-MEDICARE-JZ": "accepted"}
    assert b"NTE*ADD*A NOTE NO LOOP HERE HOLDS" in result.rejected and b"CLX*P-OK-MEDICARE-JW" in result.rejected


@pytest.mark.parametrize("name", ["clean_837p.837", "clean_837i.837", "defects_837p.837", "drugs_837p.837"])
def test_no_claim_without_a_clm_in_the_samples(samples, name):
    assert not _without_clm(samples[name].report)


def test_the_lint_lines_and_the_html_name_the_claim_with_no_clm(tmp_path, monkeypatch):
    path = tmp_path / "damaged.837"
    path.write_bytes(_damaged(CLEAN_P, "P-OK-MEDICARE-JZ"))
    code, text, files = _cli(tmp_path, monkeypatch, [path], 1)
    assert code == 1
    assert "[claim (no CLM)]" in text and "[claim ]" not in text
    assert b"Claim (no CLM)" in files["damaged.report.html"]


def test_claims_without_clm_come_out_the_same_by_sets(tmp_path, monkeypatch, by_set):  # noqa: F811
    # Three sets of two claims each; a claim with no CLM inside one set, at the end of another.
    sets = [_set_text(_defects(*ids), control) for control, ids in enumerate(
        [("P-OK-MEDICARE-JW", "P-OK-MEDICARE-JZ", "P-OK-COMMERCIAL"), ("P-OK-MEDICAID", "P-OK-DEPENDENT"),
         ("P-OK-CHEMO-Z51", "P-OK-NO-DRUG")], start=31)]
    data = _interchange([sets], 802).encode("latin-1")
    for claim_id, new_id in [("P-OK-MEDICARE-JZ", b"CLX"), ("P-OK-DEPENDENT", b"C"), ("P-OK-NO-DRUG", b" CLX")]:
        data = _damaged(data, claim_id, new_id)
    path = tmp_path / "damaged.837"
    path.write_bytes(data)
    files = assert_same_as_one_job(tmp_path, monkeypatch, by_set, [path])
    report = json.loads(files["damaged.report.json"])
    assert len(_without_clm(report)) == 3
    assert (report["summary"]["claims"], report["summary"]["accepted"]) == (7, 4)


def test_claims_without_clm_come_out_the_same_in_chunks(tmp_path, monkeypatch, by_chunk):  # noqa: F811
    # Chunks of one subscriber loop: a chunk ends after the loop with the damaged claim.
    inputs = []
    for number, (claim_id, new_id) in enumerate([("P-OK-MEDICARE-JZ", b"CLX"), ("P-OK-NO-DRUG", b"C"),
                                                 ("P-OK-COMMERCIAL", b""), ("P-OK-MEDICAID", b" CLX"),
                                                 ("P-OK-NO-DRUG", b" CLX")]):
        path = tmp_path / f"damaged{number}.837"
        path.write_bytes(_damaged(CLEAN_P, claim_id, new_id))
        inputs.append(path)
    at = CLEAN_P.rindex(b"SE*")
    (tmp_path / "indented-se.837").write_bytes(CLEAN_P[:at] + b" " + CLEAN_P[at:])
    (tmp_path / "two-providers.837").write_bytes(_two_providers())
    inputs += [tmp_path / "indented-se.837", tmp_path / "two-providers.837"]
    assert_same_in_chunks(tmp_path, monkeypatch, by_chunk, inputs)
