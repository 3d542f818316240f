"""Write a 999 Implementation Acknowledgment (005010X231A1) for the input, from its structural errors.

One ST*999 per functional group of the input, one AK2 per transaction set, an IK3 per segment in
error and an IK4 per element in error, all from the errors pyx12 and the raw-input checks found
(`TransactionClosed.errors` and `.envelope_errors`), with pyx12's own IK3/IK4 codes. A set with any
such error is rejected (IK5 R); the scrubber's own rules (units, codes...) are the 277CA's business.

The whole input gets one interchange, answered to its sender: sender and receiver swapped, the
input's delimiters. Written at `finish()`; until then only the error notes of each set are kept.

The envelope helpers here (`AckEnvelope`, `x12_text`) are shared with the 277CA writer.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..model.claim import is_digits
from ..x12.envelope import Group, Interchange
from ..x12.guide.loops import map_path
from ..x12.structural import StructuralError
from ..x12.tokenizer import Delimiters, Segment
from .sink import SetSegments, Sink, TransactionClosed
from .summary import Summary

VERSION_999 = "005010X231A1"

# The code lists of the 999 (as pyx12's map 999.5010X231.A1.xml has them): a pyx12 code outside
# them cannot be written as it is.
_IK304_CODES = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"))
_IK403_CODES = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
                          "I6", "I9", "I10", "I11", "I12", "I13"))
_IK502_CODES = frozenset(("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "15", "16",
                          "17", "18", "19", "23", "24", "25", "26", "27", "I5", "I6"))
_AK905_CODES = frozenset(("1", "2", "3", "4", "5", "6", "10", "11", "12", "13", "14", "15", "16", "17", "18",
                          "19", "23", "24", "25", "26"))

# pyx12's own segment codes that the 999 has no code for. A trailing element separator (SEG1),
# an HL01 or HL02 that does not follow the HL tree (HL1, HL2) and an LX01 out of sequence (LX)
# are wrong values in the segment: IK304 8, "segment has data element errors", as pyx12's own
# 999 writes SEG1. No IK403 code names a wrong counter, so no IK4 goes with HL1, HL2 and LX.
_SEGMENT_CODE_AS = {"SEG1": "8", "HL1": "8", "HL2": "8", "LX": "8"}
# The segments those counters count: the reader counts an HL or LX as it reads it, and its error
# waits for the next segment the walk places (README, "Differences from pyx12"), so the error of an
# LX that could not be placed stands at a later segment that is not in error for it.
_COUNTED_SEGMENT = {"HL1": "HL", "HL2": "HL", "LX": "LX"}
_HAS_ELEMENT_ERRORS = "8"

# A required segment that is missing: pyx12 notices it at the next segment it reads, and the
# validator ties the error to the segment before the gap (its loop). IK302 names the segment
# where the missing one was expected, as pyx12's own 999 does; but not the SE: pyx12 records no
# segment for the trailer (x12n_document closes the set at it), so what it notices there stays
# with the segment before, the last of the set's body.
_MISSING_CODES = frozenset(("3", "I6", "I7"))

# IK304 1: unrecognized segment id (pyx12 also says 1 for a segment it cannot place, and for a
# leading space).
_UNRECOGNIZED = "1"
# What pyx12's reader says of a segment id it cannot read (x12file.py; the compiled validator's
# _Reader says it in the same words). The error waits for the next segment the walk places
# (README, "Differences from pyx12"), which is not in error for it.
_INVALID_ID = re.compile(r'Segment identifier "(.*)" is invalid', re.S)
# How far back from where the reader's error waits its segment is looked for, when no segment
# before it has the id the message quotes (a byte outside ASCII, which the reader read as "?").
_LOOK_BACK = 64
# IK5: one or more segments in error.
_SEGMENTS_IN_ERROR = "5"
# IK403: invalid character in data element (a byte outside ASCII, S002).
_INVALID_CHARACTER = "6"
# AK905 for element errors on the GS: GS06 (group control number violates syntax) and GS08
# (functional group version not supported), as pyx12's own 999 maps them.
_GS_ELEMENT_CODES = {"GS06": "6", "GS08": "2"}

_837_MAPS = ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml")
_MAP_DIR = map_path(_837_MAPS[0]).parent  # pyx12's map folder, found where the compiled guide finds it


# -- what pyx12's 837 maps say about segments, elements and loops ---------------------------

@dataclass(frozen=True)
class _GuideNames:
    segment_ids: frozenset[str]  # every segment id the 837 guides use
    data_elements: dict[str, str]  # reference designator (NM103, CLM05-01) -> data element number
    loop_first_segment: dict[str, str]  # loop id (2010AA) -> the id of the segment that opens it


@functools.cache
def _guide_names() -> _GuideNames:
    """Read the 837 maps once: a reference designator names the same data element in every loop."""
    segment_ids: set[str] = set()
    data_elements: dict[str, str] = {}
    loops: dict[str, str] = {}
    for name in _837_MAPS:
        root = ET.parse(_MAP_DIR / name).getroot()
        for seg in root.iter("segment"):
            segment_ids.add(seg.get("xid", ""))
        for element in root.iter("element"):
            number = element.findtext("data_ele")
            if number and is_digits(number):
                data_elements.setdefault(element.get("xid", ""), number)
        for loop in root.iter("loop"):
            first = loop.find("segment")
            if first is not None:
                loops.setdefault(loop.get("xid", ""), first.get("xid", ""))
    segment_ids.discard("")
    return _GuideNames(frozenset(segment_ids), data_elements, loops)


_REFDES = re.compile(r"^(?P<seg>[A-Z0-9]{2,3}?)(?P<element>\d{2})(?:-(?P<component>\d{2}))?$")


def _split_refdes(refdes: str) -> tuple[str, int, int | None] | None:
    """'SV104' -> ('SV1', 4, None); 'HI01-02' -> ('HI', 1, 2)."""
    found = _REFDES.match(refdes)
    if found is None:
        return None
    component = found["component"]
    return found["seg"], int(found["element"]), int(component) if component else None


# -- the acknowledgment of one transaction set ----------------------------------------------

@dataclass(frozen=True, slots=True)
class ElementNote:
    """An IK4: the element (and component) in error, its data element number, pyx12's code."""

    element: int
    component: int | None
    reference: str | None
    code: str


@dataclass(slots=True)
class SegmentNote:
    """An IK3 (or several, one per code) and the IK4s of the elements in error under it."""

    seg_id: str
    position: int  # in the transaction set, ST = 1
    loop_id: str | None
    codes: list[str] = field(default_factory=list)
    elements: list[ElementNote] = field(default_factory=list)


@dataclass(slots=True)
class SetAck:
    """What the 999 says of one transaction set (AK2 ... IK5)."""

    st01: str
    st02: str
    version: str  # ST03, or GS08 where ST03 is empty
    segments: list[SegmentNote]
    set_codes: list[str]  # IK502..IK506
    rejected: bool


@dataclass(slots=True)
class GroupAck:
    """What the 999 says of one functional group (AK1 ... AK9)."""

    gs01: str
    gs06: str
    gs08: str
    sets: list[SetAck] = field(default_factory=list)
    group_codes: set[str] = field(default_factory=set)  # AK905..AK909

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.sets if not s.rejected)

    @property
    def ack_code(self) -> str:
        """AK901: A when every set is accepted, P when some are, R when none is."""
        if self.sets and self.accepted == len(self.sets):
            return "A"
        return "P" if self.accepted else "R"


class _SetNotes:
    """Collects the IK3/IK4 notes of one transaction set from its structural errors."""

    def __init__(self, segments: SetSegments, d: Delimiters) -> None:
        self._segments = segments
        self._d = d
        self._base = segments[0].index
        self._guide = _guide_names()
        self._notes: dict[tuple[int, str], SegmentNote] = {}
        self.set_codes: set[str] = set()

    def add(self, error: StructuralError) -> None:
        if error.level == "st":
            # Whatever the code, the set is rejected; a code the 999 does not know is not named.
            if error.code in _IK502_CODES:
                self.set_codes.add(error.code)
        elif error.level == "raw" and error.code == "S003":
            # An empty segment has no segment id, and an IK3 cannot name one that is not in the
            # X12 code list (X12 RFI 1257): it is reported in the IK5 only.
            self.set_codes.add(_SEGMENTS_IN_ERROR)
        elif error.level == "raw":
            self._non_ascii(error)
        elif error.level == "seg":
            self._segment_error(error)
        elif error.level == "ele":
            self._element_error(error)

    def notes(self) -> list[SegmentNote]:
        return sorted(self._notes.values(), key=lambda n: n.position)

    # -- by level ---------------------------------------------------------------------------

    def _segment_error(self, error: StructuralError) -> None:
        index = self._index(error.segment)
        if error.code == _UNRECOGNIZED:
            self._unrecognized(index, error.message)
            return
        if error.code in _MISSING_CODES:
            index = min(self._next_filled(index + 1), max(len(self._segments) - 2, 0))
        counted = _COUNTED_SEGMENT.get(error.code)
        if counted is not None and self._seg_id_at(index) != counted:
            self._counted_before(index, counted)
            return
        subject = error.seg_id.strip()
        loop_id = None
        if subject in self._guide.loop_first_segment and subject not in self._guide.segment_ids:
            # The error is about a loop (it occurs too often, or too rarely): the IK3 names the
            # loop's first segment, and the loop itself where its id fits IK303 (four characters).
            loop_id = subject if len(subject) <= 4 else None
            subject = self._guide.loop_first_segment[subject]
        note = self._note(index, subject or self._seg_id_at(index), loop_id)
        code = _SEGMENT_CODE_AS.get(error.code, error.code)
        if note is not None and code not in note.codes:
            # A code the 999 has no value for still makes the segment one in error.
            note.codes.append(code if code in _IK304_CODES else _HAS_ELEMENT_ERRORS)

    def _unrecognized(self, index: int, message: str) -> None:
        """IK304 1. The walk's "not found" stands at the segment it could not place: the IK3 names
        that segment as found (the error's subject is where pyx12's search started). The reader's
        "identifier is invalid" waits for the next segment the walk places, which is not wrong for
        it (a CLM mistyped as "cLM" put it on the SE): it goes back to the segment with that id.
        An id the guide does not have cannot be in an IK3 at all (RFI 1257): the IK5 says it."""
        invalid = _INVALID_ID.fullmatch(message)
        if invalid is not None:
            index = self._unreadable_before(index, invalid.group(1))
        note = self._note(index, self._seg_id_at(index), None)
        if note is not None and _UNRECOGNIZED not in note.codes:
            note.codes.append(_UNRECOGNIZED)

    def _counted_before(self, index: int, seg_id: str) -> None:
        """A counter's error (an HL01, HL02 or LX01 out of step) that waited at `index`: it goes to
        the nearest segment `seg_id` before it. That segment is in error already when the walk could
        not place it (IK304 1), and its number is moot then: pyx12's own 999 names it once."""
        for before, segment in self._kept_before(index):
            if segment.text.split(self._d.element, 1)[0].strip() == seg_id:
                note = self._note(before, seg_id, None)
                if note is not None and not note.codes:
                    note.codes.append(_HAS_ELEMENT_ERRORS)
                return
        self.set_codes.add(_SEGMENTS_IN_ERROR)  # (not near: the IK5 says it)

    def _unreadable_before(self, index: int, seg_id: str) -> int:
        """The segment before `index` whose id the reader could not read: the nearest with the id
        `seg_id` as found, else (an id the reader saw otherwise) the nearest whose id the guide
        does not have; `index` itself when neither is near (the set's segments kept are those
        its errors point at, and their neighbours)."""
        fallback = None
        for before, segment in self._kept_before(index):
            found = segment.text.split(self._d.element, 1)[0]
            if found == seg_id:
                return before
            if fallback is None and found.strip() not in self._guide.segment_ids:
                fallback = before
        return fallback if fallback is not None else index

    def _kept_before(self, index: int) -> Iterator[tuple[int, Segment]]:
        """The kept segments before `index`, nearest first, up to _LOOK_BACK positions back."""
        for before in range(index - 1, max(index - 1 - _LOOK_BACK, -1), -1):
            segment = self._segments.get(before)
            if segment is not None:
                yield before, segment

    def _element_error(self, error: StructuralError) -> None:
        index = self._index(error.segment)
        note = self._note(index, error.seg_id.strip() or self._seg_id_at(index), None)
        place = _split_refdes(error.element or "")
        if note is None:
            return
        if _HAS_ELEMENT_ERRORS not in note.codes:
            note.codes.append(_HAS_ELEMENT_ERRORS)
        if place is None or error.code not in _IK403_CODES:
            return
        _, element, component = place
        self._add_element(note, ElementNote(element, component, self._guide.data_elements.get(error.element or ""),
                                            error.code))

    def _non_ascii(self, error: StructuralError) -> None:
        """S002: a byte outside ASCII, as IK4 code 6 on the element that holds it."""
        index = self._index(error.segment)
        segment = self._segments.get(index)
        seg_id = self._seg_id_at(index)
        note = self._note(index, seg_id, None)
        if note is None:
            return  # the byte is in the segment id itself: the IK5 reports it
        if _HAS_ELEMENT_ERRORS not in note.codes:
            note.codes.append(_HAS_ELEMENT_ERRORS)
        if error.offset is None or segment is None:
            return
        element, component = _element_at(segment.text, error.offset - segment.offset, self._d)
        if element == 0:
            return
        refdes = f"{seg_id}{element:02d}" + (f"-{component:02d}" if component else "")
        self._add_element(note, ElementNote(element, component, self._guide.data_elements.get(refdes),
                                            _INVALID_CHARACTER))

    # -- helpers ----------------------------------------------------------------------------

    def _note(self, index: int, seg_id: str, loop_id: str | None) -> SegmentNote | None:
        """The IK3 for a segment, or None when its id is not one an IK3 can carry (RFI 1257)."""
        self.set_codes.add(_SEGMENTS_IN_ERROR)
        if seg_id not in self._guide.segment_ids:
            return None
        key = (index, seg_id)
        note = self._notes.get(key)
        if note is None:
            note = self._notes[key] = SegmentNote(seg_id, index + 1, loop_id)
        elif loop_id and not note.loop_id:
            note.loop_id = loop_id
        return note

    @staticmethod
    def _add_element(note: SegmentNote, element: ElementNote) -> None:
        if element not in note.elements:
            note.elements.append(element)

    def _index(self, file_index: int) -> int:
        """The 0-based index in the set of the segment at `file_index` in the file, kept inside
        the set (a problem noticed at the ST belongs to the set)."""
        return min(max(file_index - self._base, 0), len(self._segments) - 1)

    def _next_filled(self, index: int) -> int:
        """The first segment at or after `index` that is not empty (pyx12 skips empty ones)."""
        last = len(self._segments) - 1
        while index < last:
            segment = self._segments.get(index)
            if segment is None or segment.text.strip():
                break
            index += 1
        return min(index, last)

    def _seg_id_at(self, index: int) -> str:
        segment = self._segments.get(index)
        return segment.text.split(self._d.element, 1)[0].strip() if segment is not None else ""


def _element_at(text: str, at: int, d: Delimiters) -> tuple[int, int | None]:
    """Element position (and component position, in a composite) of character `at` of a segment."""
    before = text[:at]
    element = before.count(d.element)
    elements = text.split(d.element)
    value = elements[element] if element < len(elements) else ""
    if d.component not in value:
        return element, None
    start = len(d.element.join(elements[:element])) + (1 if element else 0)
    return element, text[start:at].count(d.component) + 1


def _acknowledge_set(event: TransactionClosed, d: Delimiters, gs08: str) -> SetAck:
    """The AK2 ... IK5 of one transaction set, from its structural errors."""
    notes = _SetNotes(event.segments, d)
    for error in event.errors:
        notes.add(error)
    header = event.transaction.header.elements(d)
    st01 = header[1] if len(header) > 1 else ""
    st03 = header[3] if len(header) > 3 else ""
    return SetAck(
        st01=st01,
        st02=event.transaction.control_number.strip(),
        version=st03 or gs08,
        segments=notes.notes(),
        set_codes=sorted(notes.set_codes, key=_code_order)[:5],
        # Problems on the set's ISA or GS stand in the way of the set too: never accepted then.
        rejected=bool(event.errors or event.envelope_errors),
    )


def _code_order(code: str) -> tuple[int, str]:
    return (int(code), "") if is_digits(code) else (1000, code)


def _group_codes(envelope_errors: list[StructuralError]) -> set[str]:
    """AK905.. codes for the problems found on a group's GS (an ISA's belong to a TA1, not here)."""
    codes = set()
    for error in envelope_errors:
        if error.level == "gs" and error.code in _AK905_CODES:
            codes.add(error.code)
        elif error.level == "ele" and error.element in _GS_ELEMENT_CODES:
            codes.add(_GS_ELEMENT_CODES[error.element])
    return codes


# -- the envelope, shared with the 277CA ----------------------------------------------------

# Characters of the X12 5010 extended character set (what pyx12 accepts in AN and ID values).
_EXTENDED = re.compile(r"""[^A-Z0-9!"&'()*+,\-./:;?= a-z%~@\[\]_{}\\|<>^`#$]""")


def x12_text(value: str, d: Delimiters, max_length: int | None = None) -> str:
    """`value` made fit for an element: characters outside the X12 character set and delimiters
    dropped, except the component separator, written " - " (so "J9032: bill" stays readable),
    spaces collapsed, cut at a word to `max_length`."""
    dropped = {d.element, d.segment} | ({d.repetition} if d.repetition else set())
    text = "".join(" - " if c == d.component else c for c in _EXTENDED.sub("", value) if c not in dropped)
    text = " ".join(text.split())
    if max_length and len(text) > max_length:
        cut = text[: max_length + 1].rsplit(" ", 1)[0]
        text = cut if cut and len(cut) <= max_length else text[:max_length]
    return text.strip()


def _segment_text(elements: list[str], d: Delimiters) -> str:
    """One segment's text, without the trailing empty elements X12 does not allow."""
    while len(elements) > 1 and elements[-1] == "":
        elements = elements[:-1]
    return d.element.join(elements)


_REPETITION_CHOICES = "^{|!"


class AckEnvelope:
    """The interchange and group an acknowledgment goes out in, answered to the input's: sender
    and receiver swapped (ISA05-08, GS02-03), the input's delimiters and line breaks, ISA13 the
    given control number or the input's, GS06 the input's (1 when the input has several groups)."""

    def __init__(self, control_number: int | str | None, created: dt.datetime | None) -> None:
        self._control_number = _control_number(control_number) if control_number is not None else None
        self._created = created
        self.d: Delimiters | None = None
        self._isa: list[str] | None = None
        self._gs: list[str] | None = None
        self._groups = 0
        self._suffix = ""

    def begin(self, delimiters: Delimiters) -> None:
        self.d = delimiters

    def interchange(self, event: Interchange) -> None:
        if self._isa is None and self.d is not None:
            self._isa = event.header.elements(self.d)
            self._suffix = event.header.suffix

    def group(self, event: Group) -> None:
        self._groups += 1
        if self._gs is None and self.d is not None:
            self._gs = event.header.elements(self.d)

    @property
    def ready(self) -> bool:
        return self._isa is not None and self._gs is not None

    @property
    def created(self) -> dt.datetime:
        """When the acknowledgment is made: the given time, else the first time it is asked."""
        if self._created is None:
            self._created = dt.datetime.now()
        return self._created

    @property
    def control(self) -> str:
        """ISA13: the given control number, else the input's."""
        assert self._isa is not None
        return self._control_number or self._isa[13]

    def render(self, functional_id: str, version: str, transactions: list[list[list[str]]]) -> str:
        """The whole interchange: each transaction set is its segments between ST and SE, as
        element lists, the first one holding only ST01; ST02 counts 0001, 0002..."""
        lines = self.opening(functional_id, version)
        for number, body in enumerate(transactions, start=1):
            lines.extend(self.transaction(number, body, version))
        lines.extend(self.closing(len(transactions)))
        end = self.end
        return end.join(lines) + end

    # The pieces of `render`, for an acknowledgment written a transaction set at a time: each a
    # list of segment texts, to be joined and ended with `end`.

    @property
    def end(self) -> str:
        """The terminator and the line break the input's ISA has."""
        assert self.d is not None
        return self._suffix or self.d.segment

    def opening(self, functional_id: str, version: str) -> list[str]:
        assert self._isa is not None and self._gs is not None and self.d is not None
        created = self.created
        return [self._isa_text(created, self.control),
                _segment_text(["GS", functional_id, self._gs[3], self._gs[2], created.strftime("%Y%m%d"),
                               created.strftime("%H%M"), self._group_control, "X", version], self.d)]

    def transaction(self, number: int, body: list[list[str]], version: str) -> list[str]:
        assert self.d is not None
        d = self.d
        st02 = f"{number:04d}"
        return [_segment_text(["ST", body[0][0], st02, version], d),
                *(_segment_text(elements, d) for elements in body[1:]),
                _segment_text(["SE", str(len(body) + 1), st02], d)]

    def closing(self, transactions: int) -> list[str]:
        assert self.d is not None
        return [_segment_text(["GE", str(transactions), self._group_control], self.d),
                _segment_text(["IEA", "1", self.control], self.d)]

    @property
    def _group_control(self) -> str:
        assert self._gs is not None
        return self._gs[6] if self._groups == 1 else "1"

    def _isa_text(self, created: dt.datetime, control: str) -> str:
        isa = self._isa
        assert isa is not None and self.d is not None
        fields = ["ISA", "00", " " * 10, "00", " " * 10, isa[7], isa[8], isa[5], isa[6],
                  created.strftime("%y%m%d"), created.strftime("%H%M"), self._repetition(), "00501", control,
                  "0", isa[15], self.d.component]
        return self.d.element.join(fields)

    def _repetition(self) -> str:
        """ISA11: the input's repetition separator; an input that named none (a letter there)
        gets the first usual one that is not already a delimiter."""
        d = self.d
        assert d is not None
        if d.repetition:
            return d.repetition
        taken = {d.element, d.component, d.segment}
        return next(c for c in _REPETITION_CHOICES if c not in taken)


def _control_number(value: int | str) -> str:
    text = str(value).strip()
    if not is_digits(text) or not 0 < int(text) <= 999_999_999:
        raise ValueError(f"an interchange control number is 1 to 999999999, not {value!r}")
    return f"{int(text):09d}"


class EnvelopedAck(Sink):
    """What the two acknowledgments share: they answer the input's envelope (AckEnvelope), held
    until `finish()`."""

    def __init__(self, stream: BinaryIO, *, control_number: int | str | None = None,
                 created: dt.datetime | None = None) -> None:
        self._stream = stream
        self._envelope = AckEnvelope(control_number, created)

    def begin(self, prefix: str, delimiters: Delimiters) -> None:
        self._envelope.begin(delimiters)

    def interchange(self, event: Interchange) -> None:
        self._envelope.interchange(event)

    def group(self, event: Group) -> None:
        self._envelope.group(event)


# -- the renderer ---------------------------------------------------------------------------

class Ack999(EnvelopedAck):
    """A 999 Implementation Acknowledgment (005010X231A1) of the whole input, written to `stream`
    at `finish()`.

    One ST*999 per functional group of the input (AK1: GS01, GS06, GS08) with one AK2 per
    transaction set. Only structural errors count (pyx12's implementation-guide errors, bytes
    outside ASCII, empty segments, problems on the set's ISA or GS): each segment in error gets
    an IK3 with pyx12's code (IK304 8 when only its elements are wrong), each element in error an
    IK4. A set with any such error is rejected (IK5 R, with IK502 5 when segments are in error);
    a set is accepted (IK5 A) only when it has none. AK9 says A, P or R: all, some or none of
    the group's sets accepted. Wrong SE01, GE01 and IEA01 counts are not reported: the scrubber
    recomputes them wherever claims go out.
    """

    wants_set_segments = True

    def __init__(self, stream: BinaryIO, *, control_number: int | str | None = None,
                 created: dt.datetime | None = None) -> None:
        super().__init__(stream, control_number=control_number, created=created)
        self._groups: list[GroupAck] = []

    def group(self, event: Group) -> None:
        super().group(event)
        d = self._envelope.d
        assert d is not None
        gs = event.header.elements(d)
        self._groups.append(GroupAck(gs01=_at(gs, 1), gs06=event.control_number.strip(), gs08=_at(gs, 8)))

    def transaction_end(self, event: TransactionClosed) -> None:
        d = self._envelope.d
        assert d is not None and self._groups
        group = self._groups[-1]
        group.sets.append(_acknowledge_set(event, d, group.gs08))
        group.group_codes |= _group_codes(event.envelope_errors)

    def finish(self, summary: Summary, trailer: str) -> None:
        if not self._envelope.ready:
            return
        d = self._envelope.d
        assert d is not None
        text = self._envelope.render("FA", VERSION_999, [_group_body(g, d) for g in self._groups])
        # Values echoed from the input (ISA and GS ids) may hold a byte outside ASCII, which an
        # acknowledgment may not: each such character becomes "?", so fixed widths still hold.
        self._stream.write(text.encode("ascii", "replace"))


def _at(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


def _group_body(group: GroupAck, d: Delimiters) -> list[list[str]]:
    """The segments of the ST*999 for one group, without ST02 and SE (the envelope numbers them)."""
    body = [["999"], ["AK1", group.gs01, group.gs06, group.gs08]]
    for ack in group.sets:
        body.append(["AK2", ack.st01, ack.st02, ack.version])
        for note in ack.segments:
            body.extend(_ik3s(note, d))
        body.append(["IK5", "R" if ack.rejected else "A", *ack.set_codes])
    received = str(len(group.sets))
    codes = sorted(group.group_codes, key=_code_order)[:5]
    body.append(["AK9", group.ack_code, received, received, str(group.accepted), *codes])
    return body


def _ik3s(note: SegmentNote, d: Delimiters) -> list[list[str]]:
    """One IK3 per code of the segment; the IK4s follow the IK3 that says its elements are wrong."""
    codes = sorted(note.codes, key=lambda c: c == _HAS_ELEMENT_ERRORS)
    if note.elements and _HAS_ELEMENT_ERRORS not in codes:
        codes.append(_HAS_ELEMENT_ERRORS)
    found: list[list[str]] = []
    for code in codes:
        found.append(["IK3", note.seg_id, str(note.position), note.loop_id or "", code])
        if code == _HAS_ELEMENT_ERRORS:
            for element in sorted(note.elements, key=lambda e: (e.element, e.component or 0)):
                position = str(element.element)
                if element.component:
                    position += d.component + str(element.component)
                found.append(["IK4", position, element.reference or "", element.code])
    return found
