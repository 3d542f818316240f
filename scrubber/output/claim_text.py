"""Claims as they cross to the worker processes: as text, read again on the other side.

Pickling the claim model (some 170 objects a claim, slotted dataclasses pickled through
`dataclasses.fields()`) cost the parent more than checking the claim does. A claim crosses as its
segments' text and the text of the HL loops above it (each loop once a batch); the worker reads
it again as TransactionReader reads it. What comes back (findings, fixed segments) pickles through
the faster reducers registered here, on multiprocessing's pickler only.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..model.build import TransactionReader
from ..model.claim import Claim, Field, Party, TransactionContext
from ..model.elements import HL
from ..rules.catalog import Rule
from ..rules.findings import Edit, Finding, Fix
from ..x12.structural import StructuralError
from ..x12.tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id

Texts = tuple[tuple[int, int, str, str], ...]  # segments as (index, offset, text, suffix)
# A claim's HL loops as they cross to a worker: each loop's own segments, outermost loop first.
# A loop's tuple is made once and shared by its claims, so a batch pickles it once. Flat, not
# nested: a hierarchy thousands of levels deep must not run pickle out of recursion.
Loops = tuple[Texts, ...]


@dataclass(slots=True)
class ClaimWork:
    """What a worker needs to check one claim.

    Pickled compactly: the claim's segments and its HL loops' segments as text (each loop once
    a batch), and the worker reads the claim again from them as TransactionReader reads it.
    Pickling the claim model itself (some 170 objects a claim) cost the parent more than
    checking the claim does. The HL loops themselves stay in the parent (no rule reads them;
    the writers do)."""

    claim: Claim
    structural: list[tuple[StructuralError, str]]
    base_index: int  # file index of the transaction's ST
    delimiters: Delimiters
    loops: Loops = ()  # set by OrderedChecks before the claim crosses

    def __reduce__(self) -> tuple[Any, ...]:
        c = self.claim
        texts = tuple([(s.index, s.offset, s.text, s.suffix) for s in c.segments])
        return (_arrive, ((c.transaction, c.first, c.end), texts, self.loops, self.structural, self.base_index,
                          self.delimiters))


def texts_of(segments: list[Segment]) -> Texts:
    return tuple([(s.index, s.offset, s.text, s.suffix) for s in segments])


def _arrive(shape: tuple[Any, ...], texts: Texts, loops: Loops,
            structural: list[tuple[StructuralError, str]], base_index: int, delimiters: Delimiters) -> ClaimWork:
    transaction, first, end = shape
    segments = [Segment(*t) for t in texts]
    claim = read_claim(transaction, first, end, segments, _party_of(loops, transaction, delimiters), delimiters)
    return ClaimWork(claim, structural, base_index, delimiters)


# The loops above the last claim read in this worker, and what each said: the claims of a loop
# come one after another, so most claims reuse all but their own subscriber loop.
_known: list[tuple[Texts, dict[str, Any]]] = []


def _party_of(loops: Loops, transaction: TransactionContext, d: Delimiters) -> dict[str, Any]:
    """What the HL loops above a claim say of it, as TransactionReader gathers it loop by loop
    (each loop starts from a copy of what the loop above it said)."""
    party: dict[str, Any] = {}
    for depth, texts in enumerate(loops):
        if depth < len(_known) and _known[depth][0] is texts:
            party = _known[depth][1]
            continue
        del _known[depth:]
        builder = TransactionReader.for_claim(transaction, d)
        builder.hl = _LoopParty(dict(party))  # type: ignore[assignment]
        hl_elements, _ = _elements(Segment(*texts[0]), d)
        builder.enter_hl_loop(hl_elements[HL.level] if len(hl_elements) > HL.level else "")
        for text in texts[1:]:  # after its HL
            seg = Segment(*text)
            elements, seg_id = _elements(seg, d)
            builder.hl_segment(seg, elements, seg_id)
        party = builder.hl.party  # type: ignore[union-attr]
        _known.append((texts, party))
    del _known[len(loops):]
    return party


class _LoopParty:
    __slots__ = ("party",)

    def __init__(self, party: dict[str, Any]) -> None:
        self.party = party


def _elements(seg: Segment, d: Delimiters) -> tuple[list[str], str]:
    """A segment's elements and id, as TransactionReader.feed takes them (leading spaces and
    control bytes off the id)."""
    elements = seg.elements(d)
    seg_id = elements[0]
    if seg_id[:1] in NOT_AN_ID:
        seg_id = segment_id(seg_id)
        elements = [seg_id, *elements[1:]]
    return elements, seg_id


def read_claim(transaction: TransactionContext, first: int, end: int, segments: list[Segment],
               party: dict[str, Any], d: Delimiters) -> Claim:
    """A claim read from its own segments as TransactionReader reads it, with what its HL loops
    said of it (`party`, as TransactionReader.start_claim takes it)."""
    builder = TransactionReader.for_claim(transaction, d)
    claim = Claim(transaction, first)
    claim.payer_class = party.get("payer_class")
    claim.payer_id = party.get("payer_id")
    claim.billing_provider = party.get("billing_provider") or Party()
    claim.subscriber = party.get("subscriber") or Party()
    claim.patient = party.get("patient")
    claim.segments = segments
    builder.read_own(claim, segments, first, keep=True)
    builder.close_claim(end)
    return claim


def _reduce_segment(segment: Segment) -> tuple[Any, ...]:
    return (Segment, (segment.index, segment.offset, segment.text, segment.suffix))  # without its split cache


def _reduce_field(field: Field) -> tuple[Any, ...]:
    return (Field, (field.value, field.segment, field.seg_id, field.element, field.component))


def _reduce_slots(item: Any) -> tuple[Any, ...]:
    kind = type(item)
    return (_from_slots, (kind, tuple(getattr(item, name) for name in kind.__slots__)))


def _from_slots(kind: type, values: tuple[Any, ...]) -> Any:
    item = kind.__new__(kind)
    for name, value in zip(kind.__slots__, values, strict=True):
        object.__setattr__(item, name, value)  # frozen ones too
    return item


# Only for what crosses to and from the workers: pickling a slotted dataclass goes through its
# __getstate__, which calls dataclasses.fields() for every object; these are several times faster.
ForkingPickler.register(Segment, _reduce_segment)
ForkingPickler.register(Field, _reduce_field)
for _kind in (Party, Finding, Fix, Edit, Rule, StructuralError, TransactionContext):
    ForkingPickler.register(_kind, _reduce_slots)
