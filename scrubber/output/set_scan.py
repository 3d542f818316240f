"""Find a claim file's transaction sets by their byte ranges, at C speed, without tokenizing it.

Parallel scrubbing hands whole transaction sets to worker processes; the parent only needs to know
where each set starts and ends, the envelope segments (ISA, GS, ST, SE, GE, IEA) around them and
every segment's index. A regex finds the segments whose id is an envelope id (after the
terminator, past the white space and control bytes the envelope reader also reads past) and
`bytes.count` counts terminators for the indexes. What this finds agrees with SegmentReader and
EnvelopeReader, segment for segment (tests/test_sets.py holds them equal); anything it cannot
speak for exactly (a segment outside a set, a file cut short) makes it give up, and the input is
scrubbed the usual way, which reports the problem as it always has.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from ..x12.tokenizer import NOT_AN_ID, Delimiters, Segment, SegmentReader

_ENVELOPE = (b"ISA", b"GS", b"ST", b"SE", b"GE", b"IEA")
CHUNK = 1 << 20  # (8 MiB a read cost the same time and 30 MiB more at the peak: two copies of it in the buffer)


@dataclass(slots=True)
class SetSpan:
    """One transaction set: its ST and SE, its bytes [start, end) (the ST's first byte to the end of
    the SE's line break) and its segments, ST and SE counted."""

    header: Segment
    trailer: Segment
    start: int
    end: int
    count: int


@dataclass
class SetPlan:
    """A file's envelope segments and its sets, in file order (a SetSpan stands for its set's ST..SE)."""

    prefix: str
    delimiters: Delimiters
    items: list[Segment | SetSpan] = field(default_factory=list)
    trailer: str = ""
    size: int = 0  # bytes read
    digest: bytes = b""

    @property
    def sets(self) -> list[SetSpan]:
        return [item for item in self.items if isinstance(item, SetSpan)]


def _pattern(d: Delimiters, ids: tuple[bytes, ...] = _ENVELOPE) -> re.Pattern[bytes]:
    """Segments whose id is one of `ids`, matched from the terminator before them."""
    t = d.segment.encode("latin-1")
    e = d.element.encode("latin-1")
    # What may stand before an id and leave it recognised (tokenizer.NOT_AN_ID), but never the
    # terminator (it would end the segment) nor the element separator (the id would be empty).
    skip = b"".join(re.escape(bytes([ord(c)])) for c in NOT_AN_ID if c not in (d.segment, d.element))
    return re.compile(re.escape(t) + b"[" + skip + b"]*(" + b"|".join(ids) + b")(?=" + re.escape(e) + b"|"
                      + re.escape(t) + b")")


def _suffix_end(data: bytes, pos: int, t: bytes) -> int:
    """Where the line break after a terminator ends (tokenizer._line_break_after, on bytes)."""
    if t == b"\n":
        return pos
    if t == b"\r":
        return pos + 1 if data[pos : pos + 1] == b"\n" else pos
    end = pos
    while end < len(data) and data[end] in b"\r\n":
        end += 1
    return end


def scan(stream: BinaryIO, largest_set: int) -> SetPlan | None:
    """The sets of the input at the stream's position (which is left at the end). None when the
    file is not one this scan speaks for exactly, or a set is larger than `largest_set` bytes: such
    a file is scrubbed the usual way. Raises InputError where SegmentReader would (no ISA, a bad ISA)."""
    start = stream.tell()
    reader = SegmentReader(stream)  # the ISA checks and the delimiters, as pass 1 makes them
    d = reader.delimiters
    stream.seek(start)
    plan = SetPlan(reader.prefix, d)
    t = d.segment.encode("latin-1")
    pattern = _pattern(d)
    claim_or_line = _pattern(d, (b"CLM", b"LX"))
    isa_at = len(reader.prefix.encode("latin-1"))
    digest = hashlib.sha256()
    buffer = b""
    base = 0  # file offset (from `start`) of buffer[0]
    pos = 0  # buffer offset up to which terminators are counted
    counted = 0  # terminators from the ISA up to buffer[pos]: the segments before it
    next_start = -1  # buffer offset where the segment after the last envelope segment starts
    open_set: Segment | None = None  # an ST read, its SE not yet
    awaiting: int | None = None  # where to look for the first CLM or LX after the last ST
    begun = False
    while True:
        chunk = stream.read(CHUNK)
        digest.update(chunk)
        plan.size += len(chunk)
        eof = not chunk
        buffer = buffer[pos:] + chunk
        base += pos
        next_start -= pos
        if awaiting is not None:
            awaiting -= pos
        pos = 0
        # Segments are taken up to the second-to-last terminator: the line break after the last one
        # may go on in the next chunk. At the end of the input, all of them.
        last = buffer.rfind(t)
        limit = last if eof else buffer.rfind(t, 0, last)
        if limit < (pos if begun else isa_at):
            if eof:
                return None
            continue
        if awaiting is not None:
            verdict = _lx_first(claim_or_line, buffer, awaiting, limit, eof)
            if verdict:
                return None
            awaiting = None if verdict is False else limit
        starts: list[int] = []  # first bytes of the envelope segments found in this round
        if not begun:  # (the buffer still starts at the input's first byte)
            begun = True
            pos = isa_at
            starts.append(isa_at)
        for match in pattern.finditer(buffer, pos):
            if match.start() >= limit and not eof:
                break
            starts.append(_suffix_end(buffer, match.start() + 1, t))
        for seg_start in starts:
            end = buffer.find(t, seg_start)
            if end == -1:
                return None  # cut short: the usual path says so
            after = _suffix_end(buffer, end + 1, t)
            counted += buffer.count(t, pos, seg_start)
            pos = seg_start
            segment = Segment(counted + 1, base + seg_start, buffer[seg_start:end].decode("latin-1"),
                              buffer[end:after].decode("latin-1"))
            seg_id = _id(segment, d)
            if open_set is not None:
                if seg_id != "SE":
                    return None  # an envelope segment inside a set: the envelope reader refuses it
                span = SetSpan(open_set, segment, open_set.offset, base + after, segment.index - open_set.index + 1)
                if span.end - span.start > largest_set:
                    return None
                plan.items.append(span)
                open_set = None
            elif next_start != seg_start and plan.items:
                return None  # a segment outside any set (or an SE without its ST): the usual path
            elif seg_id == "ST":
                open_set = segment
                verdict = _lx_first(claim_or_line, buffer, seg_start, limit, eof)
                if verdict:
                    return None
                awaiting = None if verdict is False else limit
            else:
                plan.items.append(segment)
            next_start = after
        if eof:
            rest = buffer[next_start:].decode("latin-1")
            if open_set is not None or t.decode("latin-1") in rest or rest.strip():
                return None  # segments after the last envelope segment, or a file cut short
            plan.trailer = rest
            plan.digest = digest.digest()
            return plan if plan.sets else None
        counted += buffer.count(t, pos, limit)
        pos = limit


def _lx_first(claim_or_line: re.Pattern[bytes], buffer: bytes, start: int, limit: int, eof: bool) -> bool | None:
    """Whether an LX comes before the first CLM after `start` (None: not known yet). The validator
    numbers a claim's LX from its CLM; an LX before a set's first CLM is numbered on from the last
    claim of the set before, which a worker does not see: such a file is scrubbed the usual way."""
    first = claim_or_line.search(buffer, start)
    if first is None or (first.start() >= limit and not eof):
        return None if not eof else False
    return first.group(1) == b"LX"


def _id(segment: Segment, d: Delimiters) -> str:
    seg_id = segment.text.partition(d.element)[0]
    return seg_id.lstrip(NOT_AN_ID)
