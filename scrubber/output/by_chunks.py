"""Scrub a large transaction set in worker processes, a chunk of whole HL loops at a time, and
splice their outputs in order.

by_sets.py hands whole transaction sets to the workers; a file of one set (most practice
management systems send one a day, whatever its size) would keep one worker busy. Here:

1. the main process runs pass 1 over the whole file, as with one job: every file-level error is
   raised before any output is begun. As it goes, it cuts each set before an HL, about every
   CHUNK_BYTES, and copies each chunk's bytes into a file of the input's temporary folder;
2. a worker scrubs a chunk as pass 2 would have reached it: it first reads again the segments
   that stand above the chunk (the set's header and the HL loops still open where it begins,
   which pass 1 kept), so the claim model, the structural errors handed to loops and claims
   and the HL hierarchy are those of the whole set; then it reads the chunk's claims, checks them
   against a history of the chunk alone and renders its part of each output;
3. the main process splices the parts in input order. Where a chunk's claims go in the corrected
   and rejected 837s (HL numbers, whether the set's header and the loops above are written yet)
   depends on the chunks before it: those parts are claims as text, placed by the writer here
   (ClaimFileWriter.splice_chunk). The checks across claims are settled as by_sets.py does: a
   chunk whose checks asked for a patient with doses earlier in the run is scrubbed again here.

A chunk is handed out while pass 1 is still reading, with the structural errors found so far in
the segments it reads; the errors of a set are known for sure only at its SE. When the set ends,
each chunk's errors are compared with the set's: a chunk that was handed other errors (a missing
segment reported late, an error at the SE that reaches every claim) is scrubbed again here with
the set's. Either way the outputs are those of one job, byte for byte.

A cut is made only where pass 2's reader would stand in the same state after the loops above the
chunk as after everything before it: at an HL whose parent is one of the loops open above it (or
a new billing provider), in a set whose header and billing provider loops hold no claim and whose
segments all start with an id; and not below more than ABOVE_LIMIT segments of header and open
loops. Anywhere else the chunk simply goes on. A chunk goes out as soon as it is cut; a set's
first chunk, and those near the end of the input, are smaller (the workers wait for the one, the
run for the others).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..rules.engine import FixMode
from ..rules.history import RunHistory
from ..rules.ruleset import RuleSet
from ..x12.envelope import EnvelopeReader, Group, Interchange, TransactionEnd, TransactionSet
from ..x12.guide import make_validator
from ..x12.structural import StructuralError
from ..x12.tokenizer import NOT_AN_ID, Delimiters, Segment, SegmentReader
from . import parallel
from .by_sets import (
    LARGEST_SET,
    _Delimited,
    _forget,
    _head,
    _merge,
    _Records,
    _splice,
    new_spool,
    remove_spool,
    render_parts,
)
from .loops_without_claims import LoopsWithoutClaims
from .pipeline import (
    HashingStream,
    Pass1,
    Pass2,
    Progress,
    RunContext,
    SetCheck,
    _left_behind,
    _OpenSet,
    deliver_all,
    fail_on,
    pass1_share,
    raw_problems,
)
from .sink import FragmentSink, SetSegments, Sink, TransactionClosed, renders_as_its_parts
from .summary import Summary

_log = logging.getLogger("scrubber")

# A chunk's size in bytes (about 700 claims): its worker's fixed costs (its files, reading the loops
# above it again, the parts) stay under 2% of its work, and a set of a few MiB gives every worker
# several chunks.
CHUNK_BYTES = 256 << 10
# Segments read again above a chunk, at most: a cut is not made below a header or loops larger
# than this (each chunk's worker would read them again; most chunks have some 15 above them).
ABOVE_LIMIT = 2_000
# A chunk larger than this (no cut could be made: see the module's docstring) is scrubbed in the
# main process, straight into the outputs: a worker would hold its parts, and the main process one
# output's part while it splices (by_sets.LARGEST_SET, for the same reason).
LARGEST_CHUNK = LARGEST_SET
# The segments' text gathered before it is written to the chunk's file.
_WRITE_EVERY = 4096
# Chunks handed out ahead of the one being spliced, per worker (what they hold is on disk).
AHEAD = 3
# The count a chunk's set is given while the set's SE is not read yet: no position of the chunk
# reaches it, so none of the chunk's errors is taken for one of the SE.
_COUNT_NOT_KNOWN = 1 << 62


@dataclass
class ChunkJob:
    """What a worker needs to scrub one chunk of a transaction set."""

    number: int  # the chunk's position in the file, from 1 (for its file's name)
    transaction: TransactionSet
    isa: Segment
    gs: Segment
    path: str  # the chunk's bytes (after its ISA and GS); its parts go to `parts_path`
    position: int  # of its first segment in the set (the ST is 0)
    segments: int  # how many it holds
    first_index: int  # its first segment's index in the file
    start: int  # and byte offset
    size: int  # its bytes
    # The segments read again before its own, by position: the set's header, then the open loops.
    above: list[tuple[int, list[Segment]]]
    envelope_errors: list[StructuralError]
    delimiters: Delimiters
    mode: FixMode
    today: Any
    fragments: list[Callable[[], FragmentSink]] = field(default_factory=list)
    errors: list[StructuralError] | None = None  # those of the set that reach it, once given
    count: int = _COUNT_NOT_KNOWN  # the set's segments, once its SE is read
    last: bool = False  # the set's last chunk (it ends at the SE)
    ending: int = 0  # the HL loops open at its end that the HL after it ends
    above_claimed: list[bool] = field(default_factory=list)  # whether each loop in `above` had a claim
    indented_trailer: bool = False  # the set's SE starts with white space (SetCheck's)
    redo: list[StructuralError] | None = None  # the set's errors, when the chunk's proved other

    @property
    def parts_path(self) -> str:
        return self.path + ".parts"

    @property
    def end(self) -> int:
        """Position after its last segment."""
        return self.position + self.segments

    def positions(self) -> Iterator[tuple[int, int]]:
        """The ranges of positions it reads: the segments above it, then its own."""
        for position, segments in self.above:
            yield position, position + len(segments)
        yield self.position, self.end


def _segments(job: ChunkJob) -> Iterator[Segment]:
    """The chunk's segments, read by SegmentReader from its file, with their indexes and offsets
    in the input."""
    shift_index = job.first_index - 3
    shift_offset = job.start - len(_head(job.isa, job.gs))
    with open(job.path, "rb") as stored:
        segments = iter(SegmentReader(stored))
        next(segments)  # its ISA
        next(segments)  # and GS: only their delimiters are of use
        for seg in segments:
            seg.index += shift_index
            seg.offset += shift_offset
            yield seg


# What a chunk's scrub returns: its counts, the claims it read, the loops that ended holding none.
_Scrubbed = tuple[Summary, int, LoopsWithoutClaims]


def scrub_chunk(job: ChunkJob, rules: RuleSet, sinks: list[Sink], history: RunHistory,
                errors: list[StructuralError] | None = None) -> _Scrubbed:
    """Scrub a chunk's claims into `sinks` (claim events only) against `history`, as pass 2 scrubs
    them within the whole set, given the set's structural errors that reach it (`errors`, else
    those it was handed). Returns the counts, the claims read and the loops that ended holding none."""
    d = job.delimiters
    given = job.errors if errors is None else errors
    assert given is not None
    check = SetCheck(given, job.count, job.indented_trailer)
    scrub = Pass2(_Delimited(d), _Records(), rules, sinks, job.mode, RunContext(history, job.today), None, 0)
    transaction = _OpenSet(job.transaction, d, check, job.envelope_errors, False)
    reader = transaction.reader
    feed = transaction.feed
    for position, segments in job.above:
        reader.position = position
        for seg in segments:
            feed(seg)  # (no claim ends in them: a claim would stand above the chunk)
    for node, claimed in zip(reader.stack, job.above_claimed, strict=True):
        node.claimed = claimed  # (by claims in the chunks before: a loop that ends here may hold none)
    reader.position = job.position
    deliver = scrub.deliver_ended
    # (Closed here, its file with it, whatever is raised: a MemoryError left it to the collector,
    # which printed "Exception ignored in ..." with a traceback on the watcher's log.)
    with contextlib.closing(_segments(job)) as segments:
        for seg in segments:
            claim = feed(seg)
            if claim is not None:
                deliver(transaction, claim)
    if reader.position != job.end:
        raise RuntimeError(f"chunk {job.number} read as {reader.position - job.position} segments, not {job.segments}")
    # What pass 2 does at the segment after the chunk (an HL, or the SE): the open claim ends, and
    # the loops that end there (a claim with no CLM, from one with strays and no claim: end_at).
    done = transaction.end_at(job.end, None if job.last else job.ending)
    if done is not None:
        deliver(transaction, done)
    scrub.deliver_batch()
    return scrub.summary, reader.claims_read, transaction.without_claims


def _chunk_task(job: ChunkJob) -> _Scrubbed:
    """In a worker: one chunk, against a history of its own, into fresh parts of every output
    (by_sets.render_parts)."""
    rules = parallel._worker_rules
    assert rules is not None
    return render_parts(job.fragments, job.delimiters, job.parts_path,
                        lambda parts, history: scrub_chunk(job, rules, parts, history))


# --- the main process -------------------------------------------------------------------------

@dataclass
class _Loop:
    """An HL loop open above the segment pass 1 is at, as pass 2's reader will hold it."""

    number: str
    level: str
    position: int
    segments: list[Segment]
    regular: bool  # its HL02 names the loop above it, or it is a top loop: its chunk may be cut
    claimed: bool = False  # a claim was read in it or below it (TransactionReader: HLNode.claimed)


@dataclass
class _SetEnd:
    event: TransactionEnd
    check: SetCheck
    envelope_errors: list[StructuralError]
    claims: int = 0  # read in its chunks, counted as they are spliced


class _SetCutter:
    """Pass 1's view of one transaction set: where to cut it, what stands above each chunk, and
    which of the errors found so far reach each chunk."""

    def __init__(self, transaction: TransactionSet, isa: Segment, gs: Segment, envelope_errors: list[StructuralError],
                 validator: Any, pass1: Pass1,
                 open_chunk: Callable[[_SetCutter], tuple[int, str, BinaryIO]],
                 new_job: Callable[[_SetCutter, int, str, int, Segment | None, int, int, bool], ChunkJob],
                 ready: Callable[[ChunkJob], None], input_size: int) -> None:
        self.transaction = transaction
        self.input_size = input_size  # (the bytes pass 1 reads in all: near their end, chunks are smaller)
        self.isa, self.gs = isa, gs
        self.envelope_errors = envelope_errors
        self.validator = validator
        self.pass1 = pass1
        self.open_chunk = open_chunk
        self.new_job = new_job
        self.ready = ready  # a chunk whose errors are given: it may be handed out
        self.base = transaction.header.index
        self.position = 0  # of the last segment read (the ST is 0)
        self.header: list[Segment] = []  # after the ST, up to the first HL
        self.in_header = True
        self.stack: list[_Loop] = []
        self.collecting: list[Segment] | None = None  # the own segments of the loop read last
        self.cuttable = True
        # The chunk being read: its first segment, how many, their text as it came, on its way to
        # the chunk's file (strings, not the segments: the collector walks every object that stays
        # alive, and the segments of a chunk would make it walk 10,000 of them for every 10,000
        # read; and written as it goes: a set that cannot be cut is one chunk), and its claims.
        self.first: Segment | None = None
        self.count = 0
        self.text: list[str] = []
        self.claims = 0
        self.number, self.path, self.out, self.size = 0, "", None, 0  # its file
        self.above: list[tuple[int, list[Segment]]] = []  # what stands above it
        self.above_claimed: list[bool] = []  # whether each loop in `above` had a claim
        self.jobs: list[ChunkJob] = []  # this set's chunks, in order
        # The errors found so far, by position: the validator's, then the raw checks' (SetCheck's
        # order, for each position); and those outside the set's body.
        self._validator_seen = 0
        self._raw_seen = 0
        self.found: dict[int, list[StructuralError]] = {}
        self.found_raw: dict[int, list[StructuralError]] = {}
        self.outside: list[StructuralError] = []

    def feed(self, seg: Segment, element: str) -> ChunkJob | None:
        """A segment of the set's body; returns the chunk it ended, if it did."""
        self.position += 1
        text = seg.text
        ended = None
        if not text or text[0] in NOT_AN_ID:
            # Pass 2's reader finds its id past the white space; this view does not: cut no more.
            self.cuttable = False
        elif text[:2] == "HL" and (len(text) == 2 or text[2] == element):
            ended = self._hl(seg, text.split(element))
        elif text[:3] == "CLM" and (len(text) == 3 or text[3] == element):
            if self.in_header or self.stack[-1].level == "20":
                # A claim in the header, or in a billing provider loop: the claim model then holds
                # errors against the header or the loop (pipeline._OpenSet._structure), which
                # reading the loop again above a chunk would not give. Cut no more.
                self.cuttable = False
            self.in_header = False
            self.collecting = None
            self.claims += 1
            for loop in self.stack:  # (the loops open are the chain above the claim)
                loop.claimed = True
        elif self.collecting is not None:
            self.collecting.append(seg)
        elif self.in_header:
            self.header.append(seg)
        if self.first is None:
            self.first = seg
            self.number, self.path, self.out = self.open_chunk(self)
        self.count += 1
        self.text.append(text)
        self.text.append(seg.suffix)
        if len(self.text) >= _WRITE_EVERY:
            self._write()
        return ended

    def _write(self) -> None:
        assert self.out is not None
        data = "".join(self.text).encode("latin-1")
        self.out.write(data)
        self.size += len(data)
        self.text = []

    def _hl(self, seg: Segment, elements: list[str]) -> ChunkJob | None:
        """An HL: the loop it opens, placed under the loops open above it as TransactionReader.start_hl
        places it."""
        self.in_header = False
        number = elements[1] if len(elements) > 1 else ""
        parent_number = elements[2] if len(elements) > 2 else ""
        level = elements[3] if len(elements) > 3 else ""
        stack = self.stack
        depth = len(stack)
        parent = None
        if parent_number:
            for loop in reversed(stack):
                if loop.number == parent_number:
                    parent = loop
                    break
        regular = True
        if parent is not None:
            while stack[-1] is not parent:
                stack.pop()
        elif stack and level != "20" and (parent_number or level in ("22", "23")):
            regular = False  # misplaced: pass 2 hangs it under the loop read last
        else:
            stack.clear()
        ended = None
        if (self.cuttable and regular and self.claims
                and seg.offset - self.first.offset >= self._chunk_bytes(seg)  # type: ignore[union-attr]
                and all(loop.regular for loop in stack)
                and len(self.header) + sum(len(loop.segments) for loop in stack) <= ABOVE_LIMIT
                and not self._left_behind_at_hl()):
            ended = self._cut(depth - len(stack))  # (the loops this HL ends, as TransactionReader.start_hl)
        loop = _Loop(number, level, self.position, [seg], regular)
        stack.append(loop)
        self.collecting = loop.segments
        return ended

    def _chunk_bytes(self, seg: Segment) -> int:
        """How large the chunk being read may grow. The workers wait for a set's first chunk, and the
        run for the input's last (bench/jobs_timeline.py): those are a quarter of the usual size."""
        if not self.jobs or self.input_size - seg.offset < 2 * CHUNK_BYTES:
            return CHUNK_BYTES // 4
        return CHUNK_BYTES

    def _left_behind_at_hl(self) -> bool:
        """Whether the validator reported at the HL just read an error about a segment before it
        (pipeline._left_behind): it goes to the claim that ends there, in the chunk before."""
        self._collect()
        return any(_left_behind(error, False) for error in self.found.get(self.position, ()))  # (an HL: not indented)

    def _cut(self, ending: int) -> ChunkJob:
        """End the chunk before the HL just read (which ends the `ending` innermost loops open):
        the loops open above that HL stand above the next."""
        job = self._job(self.position - self.count, last=False)
        job.ending = ending
        self.above = [(1, self.header), *((loop.position, loop.segments) for loop in self.stack)]
        self.above_claimed = [loop.claimed for loop in self.stack]
        # The errors of the chunk's segments are as good as known: the validator has read the HL
        # after it (an error it places a segment late is there), and the set's end tells for sure.
        self._collect()
        job.errors = self._errors_of(job, None)
        self.ready(job)
        return job

    def _job(self, position: int, last: bool) -> ChunkJob:
        if self.out is None:  # (a set with no segment between its ST and SE)
            self.number, self.path, self.out = self.open_chunk(self)
        self._write()
        self.out.close()
        job = self.new_job(self, self.number, self.path, self.size, self.first, self.count, position, last)
        self.jobs.append(job)
        self.first, self.count, self.text, self.claims = None, 0, [], 0
        self.number, self.path, self.out, self.size = 0, "", None, 0
        return job

    def _collect(self) -> None:
        """File the errors found since last asked, by position."""
        errors = self.validator.errors
        for error in errors[self._validator_seen:]:
            self._file(error, self.found)
        self._validator_seen = len(errors)
        raw = self.pass1.raw
        for error in raw[self._raw_seen:]:
            self._file(error, self.found_raw)
        self._raw_seen = len(raw)

    def _file(self, error: StructuralError, into: dict[int, list[StructuralError]]) -> None:
        position = error.segment - self.base
        if position <= 0:
            self.outside.append(error)
        else:
            into.setdefault(position, []).append(error)

    def _errors_of(self, job: ChunkJob, count: int | None) -> list[StructuralError]:
        """The errors filed that reach `job`: those outside the set's body first (with the SE's and
        after, once the set's `count` is known), then those of the segments it reads, by position.
        _OpenSet reads them by position, so this is what the set's own list gives it."""
        found, found_raw = self.found, self.found_raw
        reached = list(self.outside)
        body_end = _COUNT_NOT_KNOWN if count is None else count - 1
        if count is not None:
            for position in sorted(p for p in {*found, *found_raw} if p >= body_end):
                reached.extend(found.get(position, ()))
                reached.extend(found_raw.get(position, ()))
        if not found and not found_raw:
            return reached
        filed = len(found) + len(found_raw)
        for start, end in job.positions():
            end = min(end, body_end)
            # (the fewer of the range's positions and the positions with errors are looked at: a
            # flood of errors, or a set of many chunks, costs no more than its size)
            wanted = range(start, end) if end - start <= filed else \
                sorted(p for p in {*found, *found_raw} if start <= p < end)
            for position in wanted:
                reached.extend(found.get(position, ()))
                reached.extend(found_raw.get(position, ()))
        return reached

    def close(self, event: TransactionEnd, check: SetCheck, handed: Callable[[ChunkJob], bool]) -> None:
        """The SE: the last chunk, and every chunk's errors given, or checked against the set's."""
        self._job(self.position + 1 - self.count, last=True)
        # Pass 1 has taken the set's errors from the validator: file them as the set has them.
        self.found, self.found_raw, self.outside = {}, {}, []
        for error in check.errors:
            self._file(error, self.found)
        for job in self.jobs:
            job.indented_trailer = check.indented_trailer  # (before the last is handed out, the one it matters to)
            final = self._errors_of(job, event.count)
            if handed(job):
                if job.errors != final:
                    job.redo = final  # what its worker was handed was not the whole truth
                job.count = event.count  # (for scrubbing it again here)
                continue
            waiting = job.errors is not None
            job.errors, job.count = final, event.count
            if not waiting:
                self.ready(job)


def chunks_possible(sinks: list[Sink]) -> bool:
    """Whether every output can be written in chunks, as its class makes them (a subclass that
    changed what it does with claims since gets every claim: the input is checked claim by claim)."""
    return bool(sinks) and all(sink.chunk_fragments() is not None
                               and renders_as_its_parts(sink, "chunk_fragments", "parts_hold_claims_only")
                               for sink in sinks)


def scrub_by_chunks(source: BinaryIO, start: int, rules: RuleSet, sinks: list[Sink], mode: FixMode,
                    progress: Progress | None, run: RunContext, workers: parallel.Workers,
                    validator_name: str) -> Summary:
    """Scrub the input with its sets cut into chunks for `workers`; the outputs are those of one job."""
    # The rule set, the tables and whatever else the process holds stay out of the collector's
    # walks while it splices, and in the workers it forks (parallel.frozen_heap).
    with parallel.frozen_heap():
        return _Chunked(source, start, rules, sinks, mode, progress, run, workers, validator_name).run()


class _Chunked:
    """One input scrubbed in chunks: pass 1 here, cutting; the chunks in the workers; the splice."""

    def __init__(self, source: BinaryIO, start: int, rules: RuleSet, sinks: list[Sink], mode: FixMode,
                 progress: Progress | None, run: RunContext, workers: parallel.Workers, validator_name: str) -> None:
        self.size = source.seek(0, 2) - start
        source.seek(start)
        self.stream = HashingStream(source)
        self.rules, self.sinks, self.mode, self.progress, self.run_context = rules, sinks, mode, progress, run
        self.workers = workers
        self.validator_name = validator_name
        self.makers = [sink.chunk_fragments() for sink in sinks]
        # The chunks in flight, on disk: removed with what is in it when the input ends, however
        # it ends (the workers are stopped first when they may still write).
        self.spool = new_spool("scrubber-chunks-")
        self.numbered = 0
        self.queue: collections.deque[ChunkJob] = collections.deque()  # given their errors, not handed out
        self.futures: dict[int, Future[_Scrubbed] | None] = {}  # by job number, once handed out
        self.running: dict[int, Future[_Scrubbed]] = {}  # those not seen done yet
        self.here = False  # a worker died: what it had not returned, and the rest, is scrubbed here
        self.without_claims = LoopsWithoutClaims()  # the set's loops with no claim, from its chunks spliced
        self.ahead = max(1, workers.jobs) * AHEAD
        # Of the progress shown, pass 1's share: the workers scrub chunks meanwhile, so the
        # splices after it take less than pass 2 would.
        self.pass1_share = pass1_share(validator_name)

    def run(self) -> Summary:
        try:
            return self._splice(*self._pass1())
        except BaseException as exc:
            # The input stops (a file-level error, an output that cannot be written, a signal): the
            # chunks in flight are of no use, and their workers are stopped (Workers.abandon).
            if not isinstance(exc, Exception) or any(f is not None and not f.done() for f in self.futures.values()):
                self.workers.abandon()
            raise
        finally:
            remove_spool(self.spool)

    # -- pass 1, with the cuts --------------------------------------------------------------

    def _pass1(self) -> tuple[list[Any], list[Any], str, str, Delimiters]:
        reader = SegmentReader(self.stream)  # type: ignore[arg-type]
        d = reader.delimiters
        element = d.element
        validator = make_validator(self.validator_name, d)
        envelope = EnvelopeReader(reader, d, validator.feed)
        records = _Records()
        pass1 = Pass1(validator, records)
        steps: list[Any] = []  # envelope events, chunks and set ends, in input order
        isa = gs = None
        interchange_errors: list[StructuralError] = []
        group_errors: list[StructuralError] = []
        cutter: _SetCutter | None = None
        started = False
        for event in envelope:
            if type(event) is Segment:
                # (Pass1.event's first case, inlined, as pipeline._validate does)
                text = event.text
                if not text.isascii() or not text.strip():
                    pass1.raw.extend(raw_problems([event]))
                assert cutter is not None
                job = cutter.feed(event, element)
                if job is not None:
                    steps.append(job)
                    self._hand_out()
                    self._progress_in_pass1(reader.bytes_read)
                continue
            pass1.event(event)
            if isinstance(event, Interchange):
                isa, interchange_errors, group_errors = event.header, records.records[-1], []
                steps.append(event)
            elif isinstance(event, Group):
                gs, group_errors = event.header, records.records[-1]
                steps.append(event)
            elif isinstance(event, TransactionSet):
                assert isa is not None and gs is not None
                if not started:
                    # The guide's tables are loaded by now (the GS chose them): workers forked from
                    # here share them, and the code tables, rather than each reading its own.
                    self.workers.start(self.rules, share=True)
                    started = True
                cutter = _SetCutter(event, isa, gs, interchange_errors + group_errors, validator, pass1,
                                    self._open_chunk, functools.partial(self._new_job, d), self.queue.append,
                                    self.size)
            elif isinstance(event, TransactionEnd):
                assert cutter is not None
                check: SetCheck = records.records[-1]
                cutter.close(event, check, lambda job: job.number in self.futures)
                steps.append(cutter.jobs[-1])
                steps.append(_SetEnd(event, check, cutter.envelope_errors))
                cutter = None
                self._hand_out()
                self._progress_in_pass1(reader.bytes_read)
            else:
                steps.append(event)
            records.records.clear()
        validator.finish()
        fail_on(validator.take_errors())
        return steps, list(envelope.notes), reader.prefix, reader.trailer, d

    def _progress_in_pass1(self, read: int) -> None:
        if self.progress is not None:
            self.progress(int(read * self.pass1_share), 0)

    def _open_chunk(self, cutter: _SetCutter) -> tuple[int, str, BinaryIO]:
        """A new chunk's file, in the input's temporary folder: its ISA and GS first (the worker's
        SegmentReader reads the delimiters there), then its bytes as they came (_SetCutter)."""
        self.numbered += 1
        path = os.path.join(self.spool.name, f"{self.numbered}.x12")
        out = open(path, "wb")  # noqa: SIM115 (closed by the cutter at the cut)
        out.write(_head(cutter.isa, cutter.gs))
        return self.numbered, path, out

    def _new_job(self, d: Delimiters, cutter: _SetCutter, number: int, path: str, size: int, first: Segment | None,
                 count: int, position: int, last: bool) -> ChunkJob:
        return ChunkJob(number, cutter.transaction, cutter.isa, cutter.gs, path, position, count,
                        first.index if first is not None else 0, first.offset if first is not None else 0,
                        size, list(cutter.above), cutter.envelope_errors, d, self.mode, self.run_context.today,
                        self.makers, last=last, above_claimed=list(cutter.above_claimed))  # type: ignore[arg-type]

    def _hand_out(self) -> None:
        """Hand the chunks whose errors are given to the workers, in order, while fewer than
        `ahead` are in flight."""
        running = self.running
        if len(running) >= self.ahead:
            for number in [n for n, f in running.items() if f.done()]:
                del running[number]
        while self.queue and len(running) < self.ahead:
            job = self.queue.popleft()
            future = None
            if not self.here and job.size <= LARGEST_CHUNK:
                try:
                    future = running[job.number] = self.workers.pool_for(self.rules).submit(_chunk_task, job)
                except RuntimeError as exc:  # the pool broke since the last chunk
                    self._broken(exc)
            self.futures[job.number] = future

    def _broken(self, exc: BaseException) -> None:
        if not self.here:
            _log.warning("scrubber: a worker process stopped (%s); the chunks it had not returned are "
                         "scrubbed again in the main process", type(exc).__name__)
        self.here = True
        self.workers.abandon()

    # -- the splice ---------------------------------------------------------------------------

    def _splice(self, steps: list[Any], notes: list[Any], prefix: str, trailer: str, d: Delimiters) -> Summary:
        sinks = self.sinks
        history = self.run_context.history
        main = Pass2(_Delimited(d), _Records(), self.rules, sinks, self.mode, self.run_context, None, self.size)
        for sink in sinks:
            sink.begin(prefix, d)
        claims_in_set = 0
        for step in steps:
            if isinstance(step, ChunkJob):
                claims_in_set += self._take(step, main.summary, history)
                if self.progress is not None:
                    share = self.pass1_share
                    self.progress(int(self.size * share + (1 - share) * (step.start + step.size)),
                                  main.summary.claims)
            elif isinstance(step, _SetEnd):
                event, check = step.event, step.check
                closed = TransactionClosed(
                    transaction=event.transaction, trailer=event.trailer, count=event.count, errors=check.errors,
                    envelope_errors=step.envelope_errors,
                    segments=SetSegments(event.count, [], event.transaction.header.index),
                    claims=claims_in_set)
                main._set_closed(closed, event, self.without_claims)
                self.without_claims = LoopsWithoutClaims()
                claims_in_set = 0
            else:
                deliver_all(sinks, step)
        main.finish(notes, trailer)
        return main.summary

    def _take(self, job: ChunkJob, summary: Summary, history: RunHistory) -> int:
        """A chunk's parts spliced, or the chunk scrubbed here; returns the claims it read."""
        if job.number not in self.futures:
            # Not handed out yet: the chunks before it are all spliced, so none is in flight.
            self._hand_out()
        future = self.futures.pop(job.number, None)
        self.running.pop(job.number, None)
        done_there = None
        if future is not None:
            try:
                done_there = self.workers.result(future)
            except Exception as exc:  # a worker died, or the chunk could not be sent
                if isinstance(exc, BrokenProcessPool):
                    self._broken(exc)
        self._hand_out()
        try:
            if done_there is not None and job.redo is None and _splice(job, self.sinks, history, chunk=True):
                part, claims, loops = done_there
            else:  # here, against the run's history, with the set's errors
                part, claims, loops = scrub_chunk(job, self.rules, self.sinks, history, job.redo)
            self.without_claims.extend(loops)
            _merge(summary, part)
            return claims
        finally:
            _forget(job)  # type: ignore[arg-type]
