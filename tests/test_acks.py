"""The 999 and 277CA acknowledgments: valid for pyx12's own maps, and saying what the scrub found."""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pyx12.params
import pyx12.x12n_document
from conftest import CORPUS, SAMPLES, TODAY, corpus_files
from test_corpus import REFUSED

import scrubber
from scrubber.output.ack277 import STATUS_WORDING, Ack277CA
from scrubber.output.ack999 import Ack999
from scrubber.output.sink import ScrubbedClaim, Sink, TransactionClosed
from scrubber.rules.ruleset import load_rules

SAMPLE_FILES = sorted(SAMPLES.glob("*.837"))
CREATED = dt.datetime(2026, 11, 27, 9, 30)


# -- scrubbing once per file, with both acknowledgments and what they acknowledge -------------

@dataclass
class SetSeen:
    control_number: str
    structural_errors: bool
    claims: list[tuple[str, str, list[tuple[str, str]]]]  # claim id, disposition, (rule, severity) left


class _Recorder(Sink):
    """Notes, for each transaction set, whether it has structural errors and its claims."""

    def __init__(self) -> None:
        self.sets: list[SetSeen] = []
        self._claims: list[tuple[str, str, list[tuple[str, str]]]] = []

    def claim(self, item: ScrubbedClaim) -> None:
        r = item.result
        self._claims.append((r.claim.id, r.disposition, [(f.rule.id, f.severity) for f in r.findings if not f.fixed]))

    def transaction_end(self, event: TransactionClosed) -> None:
        self.sets.append(SetSeen(event.transaction.control_number, bool(event.all_errors), self._claims))
        self._claims = []


@dataclass
class Acked:
    ack999: str
    ack277: str
    sets: list[SetSeen] = field(default_factory=list)

    @property
    def claims(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        return [claim for seen in self.sets for claim in seen.claims]


@functools.cache
def _rules():
    return scrubber.load_rules()


def acknowledge(data: bytes, **options) -> Acked:
    out999, out277, recorder = io.BytesIO(), io.BytesIO(), _Recorder()
    sinks = [Ack999(out999, created=CREATED, **options), Ack277CA(out277, created=CREATED, **options), recorder]
    scrubber.scrub_stream(io.BytesIO(data), _rules(), sinks, run=scrubber.RunContext.new(TODAY))
    return Acked(out999.getvalue().decode("ascii"), out277.getvalue().decode("ascii"), recorder.sets)


@functools.cache
def acknowledge_file(path: Path) -> Acked | None:
    """Both acknowledgments of a file, or None when the scrubber refuses the file."""
    try:
        return acknowledge(path.read_bytes())
    except scrubber.InputError:
        return None


def _corpus_acked() -> list[tuple[Path, Acked]]:
    found = [(p, acknowledge_file(p)) for p in corpus_files()]
    return [(p, a) for p, a in found if a is not None]


# -- reading an X12 text ------------------------------------------------------------------------

def segments(text: str) -> list[list[str]]:
    """The segments of an interchange, as element lists (delimiters read from its ISA)."""
    element, terminator = text[3], text[105]
    return [s.strip().split(element) for s in text.split(terminator) if s.strip()]


def component(text: str) -> str:
    return text[104]


# -- validating with pyx12, as a trading partner would -----------------------------------------

class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def pyx12_errors(text: str) -> list[str]:
    """What pyx12 finds wrong in an X12 text, with its own maps: the errors it logs, a refusal,
    and the transaction sets its own 999 does not accept. Empty when the text is valid."""
    logger = logging.getLogger("pyx12")
    level = logger.level
    errors = _ErrorLog()
    logger.addHandler(errors)
    logger.setLevel(logging.ERROR)  # the scrubber silences pyx12; listen to it here
    ack = io.StringIO()
    try:
        valid = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), ack, None)
    finally:
        logger.removeHandler(errors)
        logger.setLevel(level)
    found = list(errors.messages)
    if not valid:
        found.append("pyx12 says the document is not valid")
    if re.search(r"IK5\*[^A]|AK9\*[^A]", ack.getvalue()):
        found.append(f"pyx12's own 999 does not accept it: {ack.getvalue()}")
    return found


def test_the_validator_sees_errors():
    good = acknowledge_file(SAMPLES / "clean_837p.837").ack999
    assert pyx12_errors(good) == []
    broken = good.replace("AK9*A*1*1*1", "AK9*Q*1*1*1")  # not a code of AK901
    assert pyx12_errors(broken)
    short = good.replace("SE*6*0001", "SE*5*0001")  # a wrong segment count
    assert pyx12_errors(short)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_acknowledgments_are_valid_for_pyx12(path: Path):
    acked = acknowledge_file(path)
    assert acked is not None
    assert pyx12_errors(acked.ack999) == []
    assert pyx12_errors(acked.ack277) == []


@pytest.mark.parametrize("path", [p for p in corpus_files() if p.name not in REFUSED], ids=lambda p: p.name)
def test_corpus_acknowledgments_are_valid_for_pyx12(path: Path):
    acked = acknowledge_file(path)
    assert acked is not None
    assert pyx12_errors(acked.ack999) == []
    if acked.claims:
        assert pyx12_errors(acked.ack277) == []


def test_every_corpus_file_the_scrubber_reads_is_acknowledged():
    acknowledged = {p.name for p, _ in _corpus_acked()}
    assert acknowledged == {p.name for p in corpus_files()} - set(REFUSED)


# -- the 999 ----------------------------------------------------------------------------------

def set_acks(text: str) -> list[tuple[str, list[list[str]], list[str]]]:
    """(AK202, its IK3/IK4 segments, its IK5) for each AK2 of a 999, in order."""
    found: list[tuple[str, list[list[str]], list[str]]] = []
    for seg in segments(text):
        if seg[0] == "AK2":
            found.append((seg[2], [], []))
        elif seg[0] in ("IK3", "IK4"):
            found[-1][1].append(seg)
        elif seg[0] == "IK5":
            found[-1][2].extend(seg)
    return found


def ak9s(text: str) -> list[list[str]]:
    return [seg for seg in segments(text) if seg[0] == "AK9"]


def test_999_accepts_a_clean_file():
    text = acknowledge_file(SAMPLES / "clean_837p.837").ack999
    assert [(ak2, notes, ik5) for ak2, notes, ik5 in set_acks(text)] == [("0101", [], ["IK5", "A"])]
    assert ak9s(text) == [["AK9", "A", "1", "1", "1"]]
    seg = segments(text)
    assert ["AK1", "HC", "101", "005010X222A1"] in seg
    assert ["AK2", "837", "0101", "005010X222A1"] in seg


def test_999_rejects_a_set_with_structural_errors():
    text = acknowledge_file(SAMPLES / "defects_837p.837").ack999
    [(_, notes, ik5)] = set_acks(text)
    assert ik5 == ["IK5", "R", "5"]
    assert ak9s(text) == [["AK9", "R", "1", "1", "0"]]
    ik3s = [n for n in notes if n[0] == "IK3"]
    # S001: SV103 XX is not a code of data element 355 (IK4 code 7, invalid code value).
    sv1 = next(i for i, n in enumerate(notes) if n[:2] == ["IK3", "SV1"])
    assert notes[sv1][4] == "8"
    assert notes[sv1 + 1] == ["IK4", "3", "355", "7"]
    # S002: a byte outside ASCII in the rendering provider's name (NM103, data element 1035): code 6.
    assert ["IK4", "3", "1035", "6"] in notes
    # S001 on the shared subscriber loop: DMG03 Q.
    assert ["IK4", "3", "1068", "7"] in notes
    # S003: an empty segment has no id an IK3 could name (X12 RFI 1257): the IK5 says it.
    assert all(len(n[1]) >= 2 for n in ik3s)


def test_999_positions_count_from_the_st():
    data = (SAMPLES / "defects_837p.837").read_bytes()
    text = data.decode("latin-1")
    acked = acknowledge_file(SAMPLES / "defects_837p.837")
    [(_, notes, _)] = set_acks(acked.ack999)
    sv1 = next(n for n in notes if n[:2] == ["IK3", "SV1"])
    lines = [s.strip() for s in text.split("~")]
    st = next(i for i, s in enumerate(lines) if s.startswith("ST*"))
    assert lines[st + int(sv1[2]) - 1] == "SV1*HC:99214*150*XX*1***1"


def _pyx12_ik3s(data: bytes) -> list[list[str]]:
    """The IK3s of pyx12's own 999 for an input."""
    logger = logging.getLogger("pyx12")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    ack = io.StringIO()
    try:
        pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(data.decode("ascii")), ack, None)
    finally:
        logger.setLevel(level)
    return [seg for seg in segments(ack.getvalue()) if seg[0] == "IK3"]


def _last_clm_as(seg_id: str) -> bytes:
    """clean_837p.837 with the CLM of its last claim (P-OK-NO-DRUG) turned into `seg_id`."""
    text = (SAMPLES / "clean_837p.837").read_text(encoding="ascii")
    at = text.rindex("CLM*")
    return (text[:at] + seg_id + text[at + 3:]).encode("ascii")


@pytest.mark.parametrize("seg_id", ["CLX", "cLM"])
def test_999_names_the_segments_after_a_mistyped_clm_where_pyx12_does(seg_id):
    """The claim's HI, LX, SV1 and DTP cannot be placed once its CLM is gone: each is named at its
    own place, as pyx12's own 999 names them. The reader's errors of those segments (the id it
    cannot read, the LX01 its count no longer matches) wait for the next segment the walk places,
    the SE, which is not in error for them: no IK3 names the SE. The mistyped id itself is not an
    id an IK3 can carry (RFI 1257)."""
    data = _last_clm_as(seg_id)
    [(_, notes, ik5)] = set_acks(acknowledge(data).ack999)
    ours = [n for n in notes if n[0] == "IK3"]
    assert ik5[:2] == ["IK5", "R"]
    assert [n[1:3] for n in ours] == [["HI", "117"], ["LX", "118"], ["SV1", "119"], ["DTP", "120"]]
    assert [n for n in _pyx12_ik3s(data) if n[1] != seg_id] == ours


def test_999_names_a_segment_missing_before_the_se_at_the_segment_before_it():
    """The last claim's LX removed: its SV1 and DTP cannot be placed, and the walk notices the LX
    missing at the SE. pyx12 records no segment for the SE, so its own 999 names the gap at the
    segment before (the DTP, 119), where a gap noticed at any other segment is named at that
    segment; ours named the SE (120)."""
    text = (SAMPLES / "clean_837p.837").read_text(encoding="ascii")
    at = text.rindex("LX*1~")
    data = (text[:at] + text[at + len("LX*1~"):].lstrip("\n")).encode("ascii")
    [(_, notes, _)] = set_acks(acknowledge(data).ack999)
    ours = [n for n in notes if n[0] == "IK3"]
    assert ["IK3", "LX", "119", "", "3"] in ours
    assert ours == _pyx12_ik3s(data)


def test_999_does_not_name_the_segment_after_an_unreadable_id():
    """pyx12's reader reports an id it cannot read (d-T) with the next segment the walk places,
    the LIN here, which is as it should be: no IK3 names it (pyx12's own 999 does)."""
    text = (SAMPLES / "clean_837p.837").read_text(encoding="ascii")
    at = text.index("~", text.index("DTP*472")) + 1
    [(_, notes, ik5)] = set_acks(acknowledge((text[:at] + "\nd-T*9~" + text[at:]).encode("ascii")).ack999)
    assert ik5[:2] == ["IK5", "R"]
    assert [n for n in notes if n[0] == "IK3"] == []


def _two_sets(second_broken: bool) -> bytes:
    """clean_837p.837 with its transaction set twice (ST02 0101, 0102); the second one's first
    SV103 made an invalid code when `second_broken`."""
    text = (SAMPLES / "clean_837p.837").read_text(encoding="ascii")
    start, end = text.index("ST*837*0101"), text.index("GE*1*101")
    second = text[start:end].replace("ST*837*0101", "ST*837*0102").replace("SE*121*0101", "SE*121*0102")
    if second_broken:
        second = second.replace("*UN*180***1", "*XX*180***1", 1)
    return (text[:end] + second + "GE*2*101" + text[end + len("GE*1*101"):]).encode("ascii")


def test_999_partly_accepts_a_group_with_one_clean_and_one_bad_set():
    acked = acknowledge(_two_sets(second_broken=True))
    acks = set_acks(acked.ack999)
    assert [(ak2, ik5[1]) for ak2, _, ik5 in acks] == [("0101", "A"), ("0102", "R")]
    assert ak9s(acked.ack999) == [["AK9", "P", "2", "2", "1"]]
    assert pyx12_errors(acked.ack999) == []
    assert acknowledge(_two_sets(second_broken=False)).ack999.count("IK5*A") == 2


def test_999_rejects_a_group_whose_sets_all_have_errors():
    for name in ("imsweb__x12-parser__x12_multiple_st.txt", "imsweb__x12-parser__x12_multiple_gs.txt"):
        acked = acknowledge_file(CORPUS / name)
        assert acked is not None
        acks = set_acks(acked.ack999)
        assert len(acks) == len(acked.sets) >= 2
        assert all(ik5[:2] == ["IK5", "R"] for _, _, ik5 in acks)
        assert all(ak9[1] == "R" and ak9[4] == "0" for ak9 in ak9s(acked.ack999))


def test_999_rejects_a_set_whose_group_header_is_wrong():
    # clean_837p.837's group twice in one interchange: the second GS06 repeats the first.
    text = (SAMPLES / "clean_837p.837").read_text(encoding="ascii")
    start, end = text.index("GS*"), text.index("IEA*")
    second = text[start:end].replace("ST*837*0101", "ST*837*0102").replace("SE*121*0101", "SE*121*0102")
    acked = acknowledge((text[:end] + second + text[end:].replace("IEA*1", "IEA*2")).encode("ascii"))
    assert [(ak2, ik5) for ak2, _, ik5 in set_acks(acked.ack999)] == [("0101", ["IK5", "A"]), ("0102", ["IK5", "R"])]
    # The set itself is clean: no IK3, no IK502; AK905 6 says the group control number is wrong.
    assert ak9s(acked.ack999) == [["AK9", "A", "1", "1", "1"], ["AK9", "R", "1", "1", "0", "6"]]
    assert pyx12_errors(acked.ack999) == []
    statuses = claim_statuses(acked.ack277)
    assert [stc[1] for _, stc in statuses] == ["A1:20"] * 7 + ["A7:481"] * 7


def test_999_has_one_st_per_functional_group():
    acked = acknowledge_file(CORPUS / "imsweb__x12-parser__x12_multiple_gs.txt")
    seg = segments(acked.ack999)
    groups = [s for s in seg if s[0] == "AK1"]
    assert len(groups) == len([s for s in seg if s[0] == "ST"]) == len(ak9s(acked.ack999)) >= 2
    assert [s[2] for s in seg if s[0] == "ST"] == [f"{n:04d}" for n in range(1, len(groups) + 1)]
    assert sum(1 for s in seg if s[0] == "ISA") == sum(1 for s in seg if s[0] == "GS") == 1


def test_999_never_accepts_a_set_with_errors():
    for path, acked in _corpus_acked():
        acks = set_acks(acked.ack999)
        assert len(acks) == len(acked.sets), path.name
        for seen, (ak202, _, ik5) in zip(acked.sets, acks, strict=True):
            assert ak202 == seen.control_number.strip(), path.name
            assert ik5[1] == ("R" if seen.structural_errors else "A"), f"{path.name} set {ak202}"


# -- the 277CA --------------------------------------------------------------------------------

def claim_statuses(text: str) -> list[tuple[str, list[str]]]:
    """(TRN02, its STC) for each claim: the TRN*2 and STC of each loop 2200D (under an HL PT)."""
    found = []
    seg = segments(text)
    level = ""
    for i, s in enumerate(seg):
        if s[0] == "HL":
            level = s[3]
        elif s[0] == "TRN" and s[1] == "2" and level == "PT":
            found.append((s[2], seg[i + 1]))
    return found


def test_277_has_one_status_per_claim():
    for name in ("defects_837p.837", "defects_837i.837", "clean_837p.837", "clean_837i.837"):
        acked = acknowledge_file(SAMPLES / name)
        statuses = claim_statuses(acked.ack277)
        assert [trace for trace, _ in statuses] == [claim_id for claim_id, _, _ in acked.claims], name
        sep = component(acked.ack277)
        for (_, stc), (claim_id, disposition, _) in zip(statuses, acked.claims, strict=True):
            category, code = stc[1].split(sep)[:2]
            if disposition == "rejected":
                assert (category, stc[3]) == ("A7", "U"), claim_id
                assert code in STATUS_WORDING, claim_id
            else:
                assert (category, code, stc[3]) == ("A1", "20", "WQ"), claim_id


def test_277_names_the_reason_of_the_first_unfixed_error():
    acked = acknowledge_file(SAMPLES / "defects_837p.837")
    statuses = dict(claim_statuses(acked.ack277))
    sep = component(acked.ack277)
    for claim_id, disposition, left in acked.claims:
        if disposition != "rejected":
            continue
        first = next(rule for rule, severity in left if severity == "error")
        assert statuses[claim_id][1].split(sep)[1] == load_rules().rule(first).status_277ca[0], claim_id
    assert statuses["P-U001-ZERO-UNITS"][1] == "A7:476"  # Missing or invalid units of service
    assert statuses["P-C010-NPI"][1] == "A7:562:82"  # the rendering provider's NPI
    assert statuses["P-N002-NDC-HYPHENS"][1] == "A1:20"  # fixed: corrected, accepted
    assert statuses["P-S004-FUTURE-DATE"][1] == "A7:510"  # a future date...
    assert statuses["P-S004-FUTURE-DATE"][10] == "A7:187"  # ...of service
    assert statuses["P-U001-ZERO-UNITS"][12].startswith("U001 units '0' on J9032 - bill a whole")


def test_277_never_reports_a_warning():
    acked = acknowledge_file(SAMPLES / "defects_837p.837")
    statuses = dict(claim_statuses(acked.ack277))
    # J1565 on a 2013 service draws only a warning (C003): the claim is accepted.
    assert ("C003", "warning") in {c: left for c, _, left in acked.claims}["P-C003-OLD-CODE"]
    for claim_id in ("P-C003-OLD-CODE", "P-C006-NEWER-CODE", "P-C009-BELANTAMAB-2026", "P-U009-CYCLE-B"):
        assert statuses[claim_id][1:4] == ["A1:20", "20261127", "WQ"], claim_id
        assert len(statuses[claim_id]) == 5, claim_id  # no second status, no message


def test_277_totals_and_hierarchy():
    acked = acknowledge_file(SAMPLES / "defects_837i.837")
    seg = segments(acked.ack277)
    levels = {s[1]: (s[2], s[3]) for s in seg if s[0] == "HL"}
    for number, (parent, level) in levels.items():
        expected_parent = {"20": None, "21": "20", "19": "21", "PT": "19"}[level]
        assert (levels[parent][1] if parent else None) == expected_parent, number
    claims = acked.claims
    accepted = sum(1 for _, disposition, _ in claims if disposition != "rejected")
    assert ["QTY", "90", str(accepted)] in seg
    assert ["QTY", "AA", str(len(claims) - accepted)] in seg
    assert ["REF", "BLT", "131"] in seg  # the 837I's type of bill
    stc = next(s for s in seg if s[0] == "STC" and s[1] == "A1:19:AY")
    charges = [float(s[4]) for trace, s in claim_statuses(acked.ack277)]
    assert float(stc[4]) == pytest.approx(sum(charges))


def test_277_covers_every_corpus_claim():
    # Claims are grouped by billing provider and patient, so where the input's HL tree is broken
    # the order may differ from the input's: compare what each claim id gets, as a multiset.
    for path, acked in _corpus_acked():
        if not acked.claims:
            continue
        sep = component(acked.ack277)
        found = sorted((trace, stc[1].split(sep)[0]) for trace, stc in claim_statuses(acked.ack277))
        expected = sorted((claim_id or "UNKNOWN", "A7" if disposition == "rejected" else "A1")
                          for claim_id, disposition, _ in acked.claims)
        assert found == expected, path.name


# -- the envelopes ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ack999", "ack277"])
def test_envelope_answers_the_input(kind: str):
    data = (CORPUS / "imsweb__x12-parser__x12_valid_different_separators.txt").read_bytes()
    acked = acknowledge(data, control_number=42)
    text = getattr(acked, kind)
    source = data.decode("ascii").lstrip()
    assert (text[3], text[104], text[105]) == (source[3], source[104], source[105])  # the input's delimiters
    isa, isa_in = segments(text)[0], segments(source)[0]
    assert (isa[5], isa[6], isa[7], isa[8]) == (isa_in[7], isa_in[8], isa_in[5], isa_in[6])
    assert isa[13] == "000000042"
    gs, gs_in = segments(text)[1], segments(source)[1]
    assert (gs[2], gs[3], gs[6]) == (gs_in[3], gs_in[2], gs_in[6])
    assert pyx12_errors(text) == []


def test_envelope_counts():
    acked = acknowledge(_two_sets(second_broken=True))
    for text in (acked.ack999, acked.ack277):
        seg = segments(text)
        st = [i for i, s in enumerate(seg) if s[0] == "ST"]
        se = [i for i, s in enumerate(seg) if s[0] == "SE"]
        for start, end in zip(st, se, strict=True):
            assert seg[end][1:] == [str(end - start + 1), seg[start][2]]
        assert seg[-2][:2] == ["GE", str(len(st))]
        assert seg[-1] == ["IEA", "1", seg[0][13]]
        assert seg[0][13] == "000000101"  # the input's ISA13 when none is given


def test_a_bad_control_number_is_refused():
    with pytest.raises(ValueError):
        Ack999(io.BytesIO(), control_number="12AB")
    with pytest.raises(ValueError):
        Ack277CA(io.BytesIO(), control_number=1_000_000_000)
