"""The segments the guide requires in every service line, checked on the claim as it goes out.

The validator reports a missing SV1 or DTP*472 when it leaves the line's loop. An HL it cannot
place (a level the guide does not have) does not make it leave: it reads on in the claim's last
line, and a DTP*472 after that HL is the line's date in its eyes. The claim model ends the claim
at the HL, so the claim went out with a line that has no date (a fuzzing find: its corrected file,
scrubbed again, was rejected)."""

from __future__ import annotations

from conftest import SAMPLES

CLEAN_P = (SAMPLES / "clean_837p.837").read_bytes()
NO_DATE = 'Mandatory segment "Date - Service Date" (DTP) missing'


def _date_after_an_unknown_hl() -> bytes:
    """P-OK-MEDICARE-JZ's one line without its DTP*472, which stands after the next HL instead,
    an HL of level "2X" (the segments number as many as before)."""
    start = CLEAN_P.index(b"CLM*P-OK-MEDICARE-JZ*")
    date = b"DTP*472*D8*20261102~\n"
    at = CLEAN_P.index(date, start)
    data = CLEAN_P[:at] + CLEAN_P[at + len(date):]
    return data.replace(b"HL*4*1*22*0~\n", b"HL*4*1*2X*0~\n" + date, 1)


def _index_of(data: bytes, start: bytes, after: int = 0) -> int:
    """The segment number (ISA is 1) of the first segment after segment `after` that starts with `start`."""
    segments = [seg for seg in data.split(b"~") if seg.strip()]
    return next(n for n, seg in enumerate(segments, 1) if n > after and seg.strip().startswith(start))


def test_a_line_whose_date_the_validator_found_after_an_unknown_hl_is_rejected(scrub):
    data = _date_after_an_unknown_hl()
    result = scrub(data)
    claim = result.claim("P-OK-MEDICARE-JZ")
    assert claim["disposition"] == "rejected"
    [finding] = [f for f in claim["findings"] if NO_DATE in f["message"]]
    # Where pyx12 reports it on the claim alone (below): the line's SV1.
    assert finding["segment"] == _index_of(data, b"SV1", _index_of(data, b"CLM*P-OK-MEDICARE-JZ*"))
    assert b"CLM*P-OK-MEDICARE-JZ*" not in (result.corrected or b"")
    # The claim after the HL is rejected for it, as before; the others go out.
    assert result.claim("P-OK-COMMERCIAL")["disposition"] == "rejected"
    assert result.claim("P-OK-MEDICARE-JW")["disposition"] == "accepted"


def test_the_claim_alone_is_rejected_for_the_same_reason(scrub):
    # What the check stands for: the claim without the HL and what follows it, as pyx12 reads it.
    data = _date_after_an_unknown_hl()
    cut = data.index(b"HL*4*1*2X*0")
    end = data.index(b"HL*5*")
    alone = data[:cut] + data[end:]
    se, ge = alone.index(b"~\nSE*") + 2, alone.index(b"~\nGE*") + 2
    count = len([s for s in alone[alone.index(b"ST*"):se].split(b"~") if s.strip()]) + 1
    alone = alone[:se] + b"SE*%d*0101~\n" % count + alone[ge:]
    claim = scrub(alone).claim("P-OK-MEDICARE-JZ")
    assert claim["disposition"] == "rejected"
    [finding] = [f for f in claim["findings"] if NO_DATE in f["message"]]
    assert finding["segment"] == _index_of(alone, b"SV1", _index_of(alone, b"CLM*P-OK-MEDICARE-JZ*"))


def test_quiet_on_the_samples(samples):
    for name, result in samples.items():
        assert not any(NO_DATE in f["message"] for c in result.report["claims"] for f in c["findings"]), name
