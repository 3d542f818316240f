"""Write an 837 that holds a chosen subset of the input's claims, streaming: the claims that go
out (the corrected file), or the rejected ones as they came (the rejected file).

Claims are kept or dropped whole; an HL loop stays when a kept claim hangs under it. HL
numbers are renumbered with their parent pointers (HL04 set to 0 where no child loop stays: the
only output held back, from such an HL until its child loops are known), and SE01, GE01 and
IEA01 recomputed;
envelopes left empty are dropped. Every other byte is written as it came, so a file whose
claims are all kept comes out identical (unless a count in it was wrong).
"""

from __future__ import annotations

import functools
import io
from typing import BinaryIO

from ..model.build import HLNode
from ..rules.engine import REJECTED, ClaimResult
from ..x12.edit import set_element
from ..x12.envelope import Group, GroupEnd, Interchange, InterchangeEnd
from ..x12.tokenizer import Delimiters, Segment
from .sink import FragmentSink, ScrubbedClaim, Sink, TransactionClosed
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
        # The transaction set being written: whether it is begun, its segments so far, the next
        # HL number, the HL loops written above the current claim (with their new numbers), and
        # the output held back while an HL04 waits to know whether a child loop stays.
        self._in_set = False
        self._set_count = 0
        self._next_hl = 1
        self._loops: list[tuple[HLNode, str]] = []
        self._held: HLNode | None = None
        self._hold: list[Segment] = []

    def begin(self, prefix: str, delimiters: Delimiters) -> None:
        self._prefix = prefix
        self._d = delimiters

    def _write(self, segment: Segment) -> None:
        if self.bytes_written == 0 and self._prefix:
            self._put(self._prefix)
        self._put(segment.text + segment.suffix)

    def _write_all(self, segments: list[Segment]) -> None:
        if self.bytes_written == 0 and self._prefix:
            self._put(self._prefix)
        self._put("".join([segment.text + segment.suffix for segment in segments]))

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

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        kept = (result.disposition == REJECTED) == self._rejected
        if not kept:
            self._take(result.claim.hl, False, item.header, [], 0)
            return
        segments = _written(result, self._rejected)
        self._take(result.claim.hl, True, item.header, segments, len(segments))

    def _take(self, node: HLNode | None, kept: bool, header: list[Segment], segments: list[Segment],
              count: int) -> None:
        """A claim under `node`: written (`count` segments) when `kept`, else only its place in the
        HL tree counts (whether a held loop keeps a child). Loops are told apart by their position
        in the set, not as objects: a set scrubbed in chunks (by_chunks.py) gives its parts' loops
        again as new objects."""
        if self._held is not None:
            held = self._held
            if not _within(node, held):
                self._release(has_children=False)  # its subtree ended without a kept child loop
            elif kept and node is not None and node.position != held.position:
                self._release(has_children=True)
        if not kept:
            return
        if not self._in_set:
            self._open_set(header)
        out = self._write_loops(node)
        self._set_count += count
        if self._held is None:
            # One write for the loops above the claim and its segments, not one a segment.
            out.extend(segments)
            self._write_all(out)
        else:
            if out:
                self._write_all(out)
            self._hold.extend(segments)
        self.claims_written += 1

    def _begin_set(self) -> None:
        """A set goes out: the ISA and GS it waited for are written first."""
        for header in self._pending:
            self._write(header)
            if header.text.startswith("GS"):
                self._groups_in_interchange += 1
        self._pending = []
        self._sets_in_group += 1

    def _open_set(self, header: list[Segment]) -> None:
        self._begin_set()
        self._in_set = True
        self._set_count = 0
        self._next_hl = 1
        for segment in header:
            self._emit(segment)

    def _write_loops(self, node: HLNode | None) -> list[Segment]:
        """The HL loops above a kept claim that are not written yet, renumbered in input order with
        their parent pointers: those to write now are returned (the caller writes them with the
        claim), those from a loop whose HL04 waits on are held."""
        stack = self._loops
        while stack and not _within(node, stack[-1][0]):
            stack.pop()
        missing = []
        while node is not None and not (stack and node.position == stack[-1][0].position):
            missing.append(node)
            node = node.parent
        d = self._d
        assert d is not None
        # What is not held is written at once, not a segment at a time (a claim's subscriber
        # loop is most often its own): it comes before anything held, which waits for later.
        out: list[Segment] = []
        for loop in reversed(missing):
            number = str(self._next_hl)
            self._next_hl += 1
            wanted = {1: number}
            if stack and loop.parent is not None and loop.parent.position == stack[-1][0].position:
                wanted[2] = stack[-1][1]
            hl = _with_elements(loop.segments[0], d, wanted)
            stack.append((loop, number))
            self._set_count += len(loop.segments)
            if loop is missing[0] and _element(hl, d, 4) == "1":
                # Whether its child loops stay is known only once they have been read: hold
                # the output from here until then.
                self._held = loop
                self._hold = [hl]
                self._hold.extend(loop.segments[1:])
            elif self._held is not None:
                self._hold.append(hl)
                self._hold.extend(loop.segments[1:])
            else:
                out.append(hl)
                out.extend(loop.segments[1:])
        return out

    def _release(self, has_children: bool) -> None:
        hold, self._hold, self._held = self._hold, [], None
        first = hold[0]
        assert isinstance(first, Segment) and self._d is not None
        hold[0] = first if has_children else _with_elements(first, self._d, {4: "0"})
        self._write_all(hold)

    def _emit(self, segment: Segment) -> None:
        self._set_count += 1
        if self._held is not None:
            self._hold.append(segment)
        else:
            self._write(segment)

    def transaction_end(self, event: TransactionClosed) -> None:
        if not self._in_set:
            return
        if self._held is not None:
            self._release(has_children=False)
        assert self._d is not None
        self._write(_with_count(event.trailer, self._set_count + 1, self._d))
        self._in_set = False
        self._loops = []

    def fragments(self) -> functools.partial[ClaimFileFragment]:
        return functools.partial(ClaimFileFragment, self._rejected)

    def splice(self, fragment: tuple[bytes, int, int]) -> None:
        """Transaction sets as a ClaimFileFragment wrote them (ST to SE, HL numbers from 1 in
        each): the ISA and GS they wait for are written first, as `_open_set` does."""
        body, claims, sets = fragment
        if not claims:
            return
        self._begin_set()
        self._sets_in_group += sets - 1
        if self.bytes_written == 0 and self._prefix:
            self._put(self._prefix)
        self._stream.write(body)
        self.bytes_written += len(body)
        self.claims_written += claims

    def chunk_fragments(self) -> functools.partial[ClaimFileChunk]:
        return functools.partial(ClaimFileChunk, self._rejected)

    def splice_chunk(self, fragment: tuple[list[tuple[str, str]], list[_ChunkClaim]]) -> None:
        """The claims of a chunk of a transaction set as ClaimFileChunk recorded them, written as
        `claim` writes them: the set's header, HL numbers and counts go on from the chunks before."""
        header_rows, records = fragment
        if not records:
            return
        header = [Segment(0, 0, text, suffix) for text, suffix in header_rows]
        loops: dict[int, HLNode] = {}
        for described, position, text, count in records:
            for row in described:
                loops[row[0]] = _loop(row, loops)
            node = loops[position] if position is not None else None
            kept = text is not None
            self._take(node, kept, header, [Segment(0, 0, text, "")] if kept else [], count)

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


def _written(result: ClaimResult, rejected: bool) -> list[Segment]:
    """A claim's segments as they go in the file: a rejected claim goes back as it came, one that
    goes out carries its fixes."""
    claim = result.claim
    replacements = result.replacements if not rejected else {}
    if not replacements:
        return claim.segments
    return [replacements.get(position, segment) for position, segment in enumerate(claim.segments, claim.first)]


def _within(node: HLNode | None, ancestor: HLNode) -> bool:
    """Whether `node` is `ancestor` or one of its descendants (loops are told apart by position)."""
    while node is not None and node.depth > ancestor.depth:
        node = node.parent
    return node is not None and node.position == ancestor.position


def _element(segment: Segment, d: Delimiters, position: int) -> str:
    elements = segment.elements(d)
    return elements[position] if position < len(elements) else ""


def _with_elements(segment: Segment, d: Delimiters, wanted: dict[int, str]) -> Segment:
    updated = segment
    for element, value in wanted.items():
        if _element(updated, d, element) != value:
            updated = set_element(updated, d, element, None, value)
    return updated


def _with_count(trailer: Segment, count: int, d: Delimiters) -> Segment:
    elements = trailer.elements(d)
    if len(elements) > 1 and elements[1] == str(count):
        return trailer
    return set_element(trailer, d, 1, None, str(count))


class ClaimFileFragment(ClaimFileWriter, FragmentSink):
    """Transaction sets of a claim file (of one functional group), written apart: each ST to its
    SE exactly as ClaimFileWriter writes them (it is given no envelope event, so it writes no ISA
    or GS). `take` says how many claims and sets it wrote."""

    def __init__(self, rejected: bool) -> None:
        self._buffer = io.BytesIO()
        super().__init__(self._buffer, rejected=rejected)

    def take(self) -> tuple[bytes, int, int]:
        return self._buffer.getvalue(), self.claims_written, self._sets_in_group


# A claim as ClaimFileChunk records it: the HL loops it is the first of the part to name (as
# _loop reads them), the position of its own loop (None: no HL above it), and, when it goes in
# this file, its segments' text and their number (else None and 0).
_LoopRow = tuple[int, int | None, str, str, str, list[tuple[str, str]]]
_ChunkClaim = tuple[list[_LoopRow], int | None, str | None, int]


def _loop(row: _LoopRow, loops: dict[int, HLNode]) -> HLNode:
    position, parent, number, parent_number, level, segments = row
    node = HLNode(position, number, parent_number, level, loops[parent] if parent is not None else None)
    node.segments = [Segment(0, 0, text, suffix) for text, suffix in segments]
    return node


class ClaimFileChunk(FragmentSink):
    """The claims of one chunk of a transaction set (by_chunks.py), for ClaimFileWriter.splice_chunk.
    Where the chunk's claims go in the set's output (its HL numbers, whether the set's header and
    the loops above them are written yet) depends on the chunks before it, which its worker does
    not know: so it records what ClaimFileWriter.claim reads of each claim, as text, and the main
    process writes them in order."""

    def __init__(self, rejected: bool) -> None:
        self._rejected = rejected
        self._header: list[tuple[str, str]] = []
        self._named: set[int] = set()
        self._records: list[_ChunkClaim] = []

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        if not self._header:
            self._header = [(segment.text, segment.suffix) for segment in item.header]
        node = result.claim.hl
        described: list[_LoopRow] = []
        if node is not None:
            for loop in node.chain():
                if loop.position not in self._named:
                    self._named.add(loop.position)
                    parent = loop.parent.position if loop.parent is not None else None
                    described.append((loop.position, parent, loop.number, loop.parent_number, loop.level,
                                      [(segment.text, segment.suffix) for segment in loop.segments]))
        position = node.position if node is not None else None
        if (result.disposition == REJECTED) != self._rejected:
            self._records.append((described, position, None, 0))
            return
        segments = _written(result, self._rejected)
        text = "".join([segment.text + segment.suffix for segment in segments])
        self._records.append((described, position, text, len(segments)))

    def take(self) -> tuple[list[tuple[str, str]], list[_ChunkClaim]]:
        return self._header, self._records
