"""Write an 837 that holds a chosen subset of the input's claims, streaming: the claims that go
out (the corrected file), or the rejected ones as they came (the rejected file).

Claims are kept or dropped whole; an HL loop stays when a kept claim hangs under it. HL
numbers are renumbered with their parent pointers, and SE01, GE01 and IEA01 recomputed;
envelopes left empty are dropped. Every other byte is written as it came, so a file whose
claims are all kept comes out identical (unless a count in it was wrong).
"""

from __future__ import annotations

from typing import BinaryIO

from ..model.build import HLNode, TransactionLayout
from ..model.claim import Claim
from ..rules.engine import REJECTED
from ..x12.edit import set_element
from ..x12.envelope import Group, GroupEnd, Interchange, InterchangeEnd
from ..x12.tokenizer import Delimiters, Segment
from .sink import Sink, TransactionBatch
from .summary import Summary


class ClaimFileWriter(Sink):
    """An 837 of the claims that go out (`rejected=False`, with their fixes) or of the rejected
    claims as they came (`rejected=True`). `claims_written` tells whether anything was written."""

    def __init__(self, stream: BinaryIO, *, rejected: bool = False) -> None:
        self._stream = stream
        self._rejected = rejected
        self._prefix = ""
        self._d: Delimiters | None = None
        self._pending: list[Segment] = []  # ISA / GS not yet written: they wait for a claim
        self._sets_in_group = 0
        self._groups_in_interchange = 0
        self.claims_written = 0
        self.bytes_written = 0

    def begin(self, prefix: str, delimiters: Delimiters) -> None:
        self._prefix = prefix
        self._d = delimiters

    def _write(self, segment: Segment) -> None:
        if self.bytes_written == 0 and self._prefix:
            self._put(self._prefix)
        self._put(segment.text + segment.suffix)

    def _put(self, text: str) -> None:
        data = text.encode("latin-1")
        self._stream.write(data)
        self.bytes_written += len(data)

    def interchange(self, event: Interchange) -> None:
        self._pending = [event.header]
        self._groups_in_interchange = 0

    def group(self, event: Group) -> None:
        self._pending.append(event.header)
        self._sets_in_group = 0

    def transaction(self, batch: TransactionBatch) -> None:
        if self._rejected:
            kept = [r.claim for r in batch.results if r.disposition == REJECTED]
            replacements: dict[int, Segment] = {}  # a rejected claim goes back as it came
        else:
            kept = [r.claim for r in batch.results if r.disposition != REJECTED]
            replacements = {p: s for r in batch.results for p, s in r.replacements.items()}
        if kept:
            self.write_claims(batch.layout, kept, replacements)

    def write_claims(self, layout: TransactionLayout, kept: list[Claim], replacements: dict[int, Segment]) -> None:
        """Write the transaction set with only the `kept` claims (with their fixed segments)."""
        for header in self._pending:
            self._write(header)
            if header.text.startswith("GS"):
                self._groups_in_interchange += 1
        self._pending = []
        self._sets_in_group += 1
        keep_claims = {id(c) for c in kept}
        hl_numbers = _renumber(layout.hls, keep_claims)
        segments = layout.transaction.segments
        written = 0
        for position, segment in enumerate(segments[:-1]):
            owner = layout.owner_at(position)
            if isinstance(owner, Claim):
                if id(owner) not in keep_claims:
                    continue
                segment = replacements.get(position, segment)
            elif isinstance(owner, HLNode):
                if owner not in hl_numbers:
                    continue
                if position == owner.position:
                    segment = _hl_segment(segment, owner, hl_numbers, keep_claims, self._d)
            self._write(segment)
            written += 1
        self._write(_with_count(segments[-1], written + 1, self._d))
        self.claims_written += len(kept)

    def group_end(self, event: GroupEnd) -> None:
        if self._pending:
            self._pending = self._pending[:1] if self._pending[0].text.startswith("ISA") else []
            return
        self._write(_with_count(event.trailer, self._sets_in_group, self._d))

    def interchange_end(self, event: InterchangeEnd) -> None:
        if self._pending:
            self._pending = []
            return
        self._write(_with_count(event.trailer, self._groups_in_interchange, self._d))

    def finish(self, summary: Summary, trailer: str) -> None:
        if self.bytes_written and trailer:
            self._put(trailer)


def _renumber(hls: list[HLNode], keep_claims: set[int]) -> dict[HLNode, str]:
    """New HL01 numbers, in input order, for the HL loops that still hold a kept claim."""
    numbers: dict[HLNode, str] = {}
    for node in hls:
        if any(id(c) in keep_claims for c in node.all_claims()):
            numbers[node] = str(len(numbers) + 1)
    return numbers


def _hl_segment(segment: Segment, node: HLNode, numbers: dict[HLNode, str], keep_claims: set[int],
                d: Delimiters) -> Segment:
    elements = segment.elements(d)
    updated = segment
    wanted = {1: numbers[node]}
    if node.parent is not None and node.parent in numbers:
        wanted[2] = numbers[node.parent]
    if len(elements) > 4 and elements[4] == "1" and not any(child in numbers for child in node.children):
        wanted[4] = "0"  # its child loops are gone
    for element, value in wanted.items():
        if element >= len(elements) or elements[element] != value:
            updated = set_element(updated, d, element, None, value)
    return updated


def _with_count(trailer: Segment, count: int, d: Delimiters) -> Segment:
    elements = trailer.elements(d)
    if len(elements) > 1 and elements[1] == str(count):
        return trailer
    return set_element(trailer, d, 1, None, str(count))
