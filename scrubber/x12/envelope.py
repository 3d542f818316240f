"""Group a segment stream into interchanges, functional groups and transaction sets.

Checks what must hold for the envelope to be trusted (each header closed by its own trailer,
control numbers that match, an 837 version we read) and raises InputError when it does not.
Wrong counts in SE01, GE01 and IEA01 are only noted: the writer recomputes them anyway.

Nothing is held: the segments of a transaction set are handed on one at a time, between its
TransactionSet (ST) and TransactionEnd (SE) events, so memory does not grow with the set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import InputError
from .tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id
from .versions import SUPPORTED, GuideVersion, describe_group, describe_version, guide_version


@dataclass(slots=True)
class Interchange:
    header: Segment
    control_number: str


@dataclass(slots=True)
class Group:
    header: Segment
    control_number: str
    version: GuideVersion
    interchange: Interchange


@dataclass(slots=True)
class TransactionSet:
    """A transaction set begins (its ST); its segments follow as Segment events, then a TransactionEnd."""

    header: Segment
    group: Group
    control_number: str
    number: int  # 1-based position of the transaction set in the file


@dataclass(slots=True)
class TransactionEnd:
    trailer: Segment  # the SE
    transaction: TransactionSet
    count: int  # segments from ST to SE, both counted


@dataclass(slots=True)
class GroupEnd:
    trailer: Segment
    group: Group


@dataclass(slots=True)
class InterchangeEnd:
    trailer: Segment
    interchange: Interchange


Event = Interchange | Group | TransactionSet | Segment | TransactionEnd | GroupEnd | InterchangeEnd


@dataclass(slots=True)
class EnvelopeNote:
    """A file-level problem that does not stop the scrub (a wrong count, say)."""

    code: str
    message: str
    segment: int
    offset: int


@dataclass
class _Open:
    interchange: Interchange | None = None
    group: Group | None = None
    transaction: TransactionSet | None = None
    segments_in_set: int = 0
    groups_in_interchange: int = 0
    sets_in_group: int = 0
    transactions_seen: int = 0
    notes: list[EnvelopeNote] = field(default_factory=list)


_ENVELOPE_IDS = frozenset(("ISA", "GS", "ST", "SE", "GE", "IEA"))

SegmentObserver = Callable[[Segment, str, "Group | None"], None]


class EnvelopeReader:
    """Iterate to get envelope events; `notes` collects non-fatal envelope problems."""

    def __init__(
        self,
        segments: Iterable[Segment],
        delimiters: Delimiters,
        observer: SegmentObserver | None = None,
    ) -> None:
        self._segments = segments
        self._d = delimiters
        self._observer = observer
        self._state = _Open()

    @property
    def notes(self) -> list[EnvelopeNote]:
        return self._state.notes

    def skip_segments(self, count: int) -> None:
        """Count `count` segments of the open transaction set as read without handing them to this
        reader (parallel scrubbing reads the envelope with the sets' bodies read elsewhere)."""
        self._state.segments_in_set += count

    def __iter__(self) -> Iterator[Event]:
        state = self._state
        d = self._d
        element = d.element
        observer = self._observer
        last: Segment | None = None
        for seg in self._segments:
            last = seg
            # The common case first, with no call it can avoid: a body segment of an open set.
            elements = seg._elements
            if elements is not None:
                seg_id = elements[0]
            else:  # (find and slice: partition would copy the rest of the segment too)
                text = seg.text
                cut = text.find(element)
                seg_id = text if cut < 0 else text[:cut]
            if seg_id not in _ENVELOPE_IDS and state.transaction is not None and seg_id[:1] not in NOT_AN_ID:
                state.segments_in_set += 1
                if observer is not None:
                    observer(seg, seg_id, state.group)
                yield seg
                continue
            # A segment may start with spaces or control bytes (refused by the guide, reported by
            # the validator): its id is still recognised, so an indented GS is a GS.
            seg_id = segment_id(seg_id)
            # Envelope segments are split here; the rest are left to whoever reads them.
            elements = seg.elements(d) if seg_id in _ENVELOPE_IDS else [seg_id]
            if elements[0] != seg_id:
                elements = [seg_id, *elements[1:]]
            # Check the envelope first: pyx12, behind the observer, fails on an envelope out of order.
            event = self._envelope_event(seg, elements, seg_id)
            if self._observer is not None:
                self._observer(seg, seg_id, state.group)
            if event is not None:
                yield event
        if state.interchange is not None or last is None:
            where = last.offset + len(last.raw()) if last is not None else 0
            raise InputError(
                "the file ends before the interchange is closed (no IEA): it may be cut short",
                code="envelope.unclosed",
                offset=where,
                segment=last.index if last is not None else None,
            )

    def _envelope_event(self, seg: Segment, elements: list[str], seg_id: str) -> Event | None:
        state = self._state
        if seg_id == "ISA":
            return self._open_interchange(seg, elements)
        if seg_id == "GS":
            return self._open_group(seg, elements)
        if seg_id == "ST":
            return self._open_transaction(seg, elements)
        if state.transaction is not None:
            state.segments_in_set += 1
            if seg_id == "SE":
                return self._close_transaction(seg, elements)
            if seg_id in ("GE", "IEA"):
                raise _unexpected(seg, seg_id, "before the transaction set was closed by SE")
            return seg
        if seg_id == "GE":
            return self._close_group(seg, elements)
        if seg_id == "IEA":
            return self._close_interchange(seg, elements)
        if seg_id == "SE":
            raise _unexpected(seg, seg_id, "without a transaction set header (ST) to close")
        raise _unexpected(seg, seg_id, "outside a transaction set (ST ... SE)")

    # -- interchange ---------------------------------------------------------------------

    def _open_interchange(self, seg: Segment, elements: list[str]) -> Interchange:
        state = self._state
        if state.interchange is not None:
            raise _unexpected(seg, "ISA", "before the previous interchange was closed by IEA")
        if len(elements) != 17:
            raise InputError(
                f"the ISA has {len(elements) - 1} elements; it must have 16",
                code="isa.elements",
                offset=seg.offset,
                segment=seg.index,
            )
        if elements[12] != "00501":
            version = "4010" if elements[12] == "00401" else repr(elements[12])
            raise InputError(
                f"this is an X12 {version} interchange (ISA12 {elements[12]}); "
                f"the scrubber reads 5010 claims: {SUPPORTED}",
                code="version",
                offset=seg.offset,
                segment=seg.index,
            )
        state.interchange = Interchange(seg, elements[13])
        state.groups_in_interchange = 0
        return state.interchange

    def _close_interchange(self, seg: Segment, elements: list[str]) -> InterchangeEnd:
        state = self._state
        interchange = state.interchange
        if interchange is None:
            raise _unexpected(seg, "IEA", "without an interchange header (ISA) to close")
        if state.group is not None:
            raise _unexpected(seg, "IEA", "before the functional group was closed by GE")
        _check_control(seg, elements, 2, interchange.control_number, "IEA02", "ISA13")
        self._check_count(seg, elements, "IEA01", state.groups_in_interchange, "functional groups")
        state.interchange = None
        return InterchangeEnd(seg, interchange)

    # -- group ---------------------------------------------------------------------------

    def _open_group(self, seg: Segment, elements: list[str]) -> Group:
        state = self._state
        if state.interchange is None:
            raise _unexpected(seg, "GS", "outside an interchange (ISA ... IEA)")
        if state.group is not None:
            raise _unexpected(seg, "GS", "before the previous functional group was closed by GE")
        gs01 = _element(elements, 1)
        gs08 = _element(elements, 8)
        if gs01 != "HC":
            raise InputError(
                f"the functional group holds {describe_group(gs01)}, not health care claims "
                f"(GS01 HC); the scrubber reads {SUPPORTED}",
                code="version",
                offset=seg.offset,
                segment=seg.index,
            )
        version = guide_version(gs08)
        if version is None:
            raise InputError(
                f"GS08 names implementation guide {describe_version(gs08)}; "
                f"the scrubber reads {SUPPORTED}",
                code="version",
                offset=seg.offset,
                segment=seg.index,
            )
        state.group = Group(seg, _element(elements, 6), version, state.interchange)
        state.groups_in_interchange += 1
        state.sets_in_group = 0
        return state.group

    def _close_group(self, seg: Segment, elements: list[str]) -> GroupEnd:
        state = self._state
        group = state.group
        if group is None:
            raise _unexpected(seg, "GE", "without a functional group header (GS) to close")
        _check_control(seg, elements, 2, group.control_number, "GE02", "GS06")
        self._check_count(seg, elements, "GE01", state.sets_in_group, "transaction sets")
        state.group = None
        return GroupEnd(seg, group)

    # -- transaction set -----------------------------------------------------------------

    def _open_transaction(self, seg: Segment, elements: list[str]) -> TransactionSet:
        state = self._state
        if state.group is None:
            raise _unexpected(seg, "ST", "outside a functional group (GS ... GE)")
        if state.transaction is not None:
            raise _unexpected(seg, "ST", "before the previous transaction set was closed by SE")
        st01 = _element(elements, 1)
        st03 = _element(elements, 3)
        if st01 != "837":
            raise InputError(
                f"the transaction set is a {st01!r}, not an 837 claim; the scrubber reads {SUPPORTED}",
                code="version",
                offset=seg.offset,
                segment=seg.index,
            )
        if st03 and st03 != state.group.version.found:
            st_version = guide_version(st03)
            if st_version is None or st_version.kind != state.group.version.kind:
                raise InputError(
                    f"ST03 names implementation guide {describe_version(st03)} inside a group "
                    f"for {state.group.version.found}; the scrubber reads {SUPPORTED}",
                    code="version",
                    offset=seg.offset,
                    segment=seg.index,
                )
        state.sets_in_group += 1
        state.transactions_seen += 1
        state.segments_in_set = 1
        state.transaction = TransactionSet(seg, state.group, _element(elements, 2), state.transactions_seen)
        return state.transaction

    def _close_transaction(self, seg: Segment, elements: list[str]) -> TransactionEnd:
        state = self._state
        transaction = state.transaction
        assert transaction is not None
        _check_control(seg, elements, 2, transaction.control_number, "SE02", "ST02")
        self._check_count(seg, elements, "SE01", state.segments_in_set, "segments")
        state.transaction = None
        return TransactionEnd(seg, transaction, state.segments_in_set)

    def _check_count(self, seg: Segment, elements: list[str], name: str, actual: int, what: str) -> None:
        found = _element(elements, 1)
        if found != str(actual):
            self._state.notes.append(
                EnvelopeNote(
                    code="envelope.count",
                    message=f"{name} says {found!r} but the {what} number {actual}: "
                    "the count is recomputed in the corrected file",
                    segment=seg.index,
                    offset=seg.offset,
                )
            )


def _element(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


def _check_control(
    seg: Segment, elements: list[str], position: int, expected: str, name: str, header: str
) -> None:
    found = _element(elements, position)
    if found.strip() != expected.strip():
        raise InputError(
            f"{name} {found!r} does not match {header} {expected!r}: the envelope cannot be trusted",
            code="envelope.control_number",
            offset=seg.offset,
            segment=seg.index,
        )


def _unexpected(seg: Segment, seg_id: str, where: str) -> InputError:
    shown = seg_id if seg_id.strip() else "an empty segment"
    return InputError(
        f"{shown} found {where}: the envelope cannot be trusted",
        code="envelope.order",
        offset=seg.offset,
        segment=seg.index,
    )
