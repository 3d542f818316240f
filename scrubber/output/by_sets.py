"""Scrub a file's transaction sets in worker processes, whole, and splice their outputs in order.

With `--jobs` > 1 and outputs that can be written in parts (Sink.fragments: the corrected and
rejected 837s, the JSON, HTML and CSV reports, the linter lines), the main process does little:

1. it finds the sets' byte ranges (set_scan.py) and reads the envelope with the set bodies
   skipped: the envelope reader and the implementation-guide validator see the ISA, GS, ST, SE,
   GE and IEA segments with their true indexes, so every file-level error is raised here, as pass
   1 raises it, before any output is begun, and the errors of each ISA and GS are known;
2. each worker takes a whole set: it validates it (the ISA, the GS and the set, through the same
   validator), reads its claims, checks them against a history of that set alone, and renders the
   set's part of each output;
3. the main process takes the sets in input order. The checks across claims (U008, U009, U015)
   read the doses of the patient's earlier claims, and only when the claim has doses of its own; a
   worker says which patients it asked for. If none of them has doses in the run's history (the
   claims of earlier sets and files), the set's own history was the whole truth and its parts are
   exact: they are spliced, and the set's doses recorded. Otherwise the set is scrubbed again here,
   against the run's history, straight into the outputs. Either way the outputs are those of one job.

A worker that dies loses nothing: its sets, and the rest of the input, are scrubbed here.

The main process holds no set whole (its memory must not follow the number of sets in flight, nor
the file): each set's bytes are copied, as they are read and hashed, into a file of the input's
temporary folder, which its worker reads; the worker writes the set's parts into a file beside it,
and the main process reads them back one output at a time when it splices them, then deletes both.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from ..errors import InputError
from ..rules.engine import FixMode
from ..rules.history import LocalHistory, RunHistory
from ..rules.ruleset import RuleSet
from ..x12.envelope import EnvelopeReader, Group, Interchange, TransactionEnd, TransactionSet
from ..x12.guide import make_validator
from ..x12.structural import StructuralError
from ..x12.tokenizer import Delimiters, Segment, SegmentReader
from . import parallel
from .pipeline import (
    HashingStream,
    Pass1,
    Pass2,
    Progress,
    RunContext,
    SetCheck,
    deliver_all,
    fail_on,
    fewer_collections,
    raw_problems,
)
from .set_scan import SetPlan, SetSpan, scan
from .sink import FragmentSink, Sink, renders_as_its_parts
from .summary import Summary

_log = logging.getLogger("scrubber")
_T = TypeVar("_T")

# Sets handed out ahead of the one being spliced, per worker: enough to keep every worker busy
# while the main process splices. What they hold is on disk (the sets' bytes and parts), not in
# the main process.
AHEAD = 2
# A set larger than this (about 180,000 claims) is not handed out: a worker holds its bytes, and the
# main process one output's part of it while splicing. A file with one is scrubbed the usual way
# (claims checked in the workers).
LARGEST_SET = 64 << 20
# The bytes copied at a time from the input into a set's file.
_COPY_CHUNK = 1 << 20
# A set up to this size (about 20,000 claims) is tokenized once in its worker, for both passes.
KEEP_SEGMENTS = 8 << 20
# Sets smaller than this go to a worker together, consecutive ones of one functional group, up
# to about this size a job: each job costs a few milliseconds (its files, a validator, the
# parts, the splice), more than a claim's checks. A file of one-claim sets took 5x the time of
# one job when each set was a job (README, "Parallel scrubbing").
GROUP_BYTES = 256 << 10


@dataclass
class SetJob:
    """What a worker needs to scrub one set, or a run of consecutive small sets of one functional
    group (GROUP_BYTES): the file that holds them (their ISA and GS, then their bytes) and where
    they sit in the input, the ISA and GS above them (it validates them with the sets, as pass 1
    does) and their errors as the whole file's validation found them (a control number used
    twice is seen only across the file)."""

    number: int  # the first set's position in the file, 1-based (TransactionSet.number)
    isa: Segment
    gs: Segment
    spans: list[SetSpan]  # the sets, consecutive in the file (nothing but white space between them)
    path: str  # the set's file in the input's temporary folder; its parts go to `parts_path`
    interchange_errors: list[StructuralError]
    group_errors: list[StructuralError]
    delimiters: Delimiters
    validator: str
    mode: FixMode
    today: Any
    fragments: list[Callable[[], FragmentSink]] = field(default_factory=list)
    keep_segments: bool = False  # whether to hold the set's segments for pass 2 (KEEP_SEGMENTS)


    @property
    def parts_path(self) -> str:
        return self.path + ".parts"


class _Records:
    """Pass 1's records for one set, in memory (pipeline._ValidationLog's read and write)."""

    def __init__(self, records: list[Any] | None = None) -> None:
        self.records = list(records or [])
        self._next = 0

    def write(self, record: Any) -> None:
        self.records.append(record)

    def read(self) -> Any:
        record = self.records[self._next]
        self._next += 1
        return record


class _Delimited:
    """A stand-in for pass 2's SegmentReader where only the delimiters are read."""

    def __init__(self, delimiters: Delimiters) -> None:
        self.delimiters = delimiters
        self.prefix = self.trailer = ""
        self.bytes_read = 0


def _head(isa: Segment, gs: Segment) -> bytes:
    """What a set's file holds before the set: its ISA and GS, as they came."""
    return (isa.text + isa.suffix + gs.text + gs.suffix).encode("latin-1")


def _segments(job: SetJob) -> Iterator[Segment]:
    """The ISA, the GS and the sets' segments, read by SegmentReader from the sets' file, with the
    indexes and offsets they have in the input."""
    isa, gs, span = job.isa, job.gs, job.spans[0]
    shift = (span.header.index - 3, span.start - len(_head(isa, gs)))  # (the ST is the third segment)
    with open(job.path, "rb") as stored:
        segments = iter(SegmentReader(stored, shift=shift))
        for first, seg in zip((isa, gs), segments, strict=False):  # (the tuple first: zip stops on it)
            seg.index, seg.offset = first.index, first.offset
            yield seg
        yield from segments


def scrub_set(job: SetJob, rules: RuleSet, sinks: list[Sink], history: RunHistory) -> Summary:
    """Scrub a job's transaction sets into `sinks` (their claims and ends: no envelope event)
    against `history`, as the whole file's two passes scrub them."""
    d = job.delimiters
    sets = len(job.spans)
    # Sets of a few MiB are read once for both passes (about 7% of their scrub); larger ones
    # twice, so that memory holds one claim at a time, as with one job.
    kept = list(_segments(job)) if job.keep_segments else None
    validator = make_validator(job.validator, d)
    records = _Records()
    pass1 = Pass1(validator, records).sets_closed(EnvelopeReader(kept or _segments(job), d, validator.feed))
    for closed, _ in enumerate(pass1, 1):
        if closed == sets:
            break
    checks: list[SetCheck] = records.records[2:]
    for number, check, span in zip(range(job.number, job.number + sets), checks, job.spans, strict=False):
        if check.count != span.count:
            raise RuntimeError(f"transaction set {number} read as {check.count} segments, not {span.count}")
    if len(records.records) != 2 + sets:
        raise RuntimeError(f"transaction sets {job.number} to {job.number + sets - 1} read as {len(checks)} sets")
    scrub = Pass2(_Delimited(d), _Records([job.interchange_errors, job.group_errors, *checks]), rules, sinks,
                   job.mode, RunContext(history, job.today), None, 0)
    number = job.number
    closed = 0
    segments = iter(kept or _segments(job))
    envelope = EnvelopeReader(segments, d)
    for event in envelope:
        if type(event) is TransactionSet:
            event.number = number
            number += 1
            scrub.event(event, deliver_envelope=False)
            scrub.read_body(segments, envelope)
            continue
        scrub.event(event, deliver_envelope=False)
        if type(event) is TransactionEnd:
            closed += 1
            if closed == sets:
                break
    return scrub.summary


def _set_task(job: SetJob) -> Summary:
    """In a worker: one set, against a history of its own, into fresh parts of every output."""
    rules = parallel._worker_rules
    assert rules is not None
    return render_parts(job.fragments, job.delimiters, job.parts_path,
                        lambda parts, history: scrub_set(job, rules, parts, history))


def render_parts(fragments: list[Callable[[], FragmentSink]], delimiters: Delimiters, parts_path: str,
                 scrub: Callable[[list[Sink], LocalHistory], _T]) -> _T:
    """In a worker: `scrub` a part of the input (a set, a chunk) against a history of its own into
    fresh parts of every output. What it returns (the counts) goes back through the pool's pipe;
    the rest goes to `parts_path`, one pickle after the other: the patients whose earlier doses its
    checks asked for, each output's part (in the order of the sinks), the patients it recorded
    doses for, then those doses (per claim, in order: the main process reads them only when its
    history needs them, RunHistory.record_pickled). Through the pipe they would wait in the main
    process, unpickled (some 5 MiB a set of 5,000 claims), until their turn."""
    parts = [make() for make in fragments]
    for part in parts:
        part.begin("", delimiters)
    history = LocalHistory()
    try:
        with fewer_collections():
            done = scrub(parts, history)  # type: ignore[arg-type]
    finally:
        history.close()
    with open(parts_path, "wb") as out:
        own = history.part()
        pickle.dump(own.asked, out, pickle.HIGHEST_PROTOCOL)
        for part in parts:
            pickle.dump(part.take(), out, pickle.HIGHEST_PROTOCOL)
        pickle.dump(own.keys, out, pickle.HIGHEST_PROTOCOL)
        pickle.dump(own.rows, out, pickle.HIGHEST_PROTOCOL)
    return done


# --- the main process -------------------------------------------------------------------------

@dataclass
class _SetStep:
    number: int
    span: SetSpan
    isa: Segment
    gs: Segment
    interchange_errors: list[StructuralError]
    group_errors: list[StructuralError]


class _EnvelopePass:
    """Pass 1 over the envelope, with each set's body skipped (counted for SE01, never validated).
    Iterate for the interchange and group events in order and a _SetStep for each set; then `notes`
    holds the envelope reader's notes. Raises InputError where pass 1 would."""

    def __init__(self, plan: SetPlan, validator_name: str) -> None:
        self.plan = plan
        self.validator = make_validator(validator_name, plan.delimiters)
        self.notes: list[Any] = []
        self._envelope = EnvelopeReader(self._skeleton(), plan.delimiters, self.validator.feed)

    def _skeleton(self) -> Iterator[Segment]:
        for item in self.plan.items:
            if isinstance(item, SetSpan):
                yield item.header
                self._envelope.skip_segments(item.count - 2)
                yield item.trailer
            else:
                yield item

    def __iter__(self) -> Iterator[Any]:
        validator = self.validator
        envelope = self._envelope
        spans = iter(self.plan.sets)
        isa = gs = None
        interchange_errors: list[StructuralError] = []
        group_errors: list[StructuralError] = []
        for event in envelope:
            if isinstance(event, Segment):
                continue
            if isinstance(event, Interchange):
                isa, group_errors = event.header, []
                interchange_errors = raw_problems([event.header]) + validator.take_errors()
                yield event
            elif isinstance(event, Group):
                gs, group_errors = event.header, raw_problems([event.header]) + validator.take_errors()
                yield event
            elif isinstance(event, TransactionSet):
                assert isa is not None and gs is not None
                yield _SetStep(event.number, next(spans), isa, gs, interchange_errors, group_errors)
            elif isinstance(event, TransactionEnd):
                validator.take_errors()  # the set's own: its worker finds them with the set's body
            else:
                fail_on(validator.take_errors())
                yield event
        validator.finish()
        fail_on(validator.take_errors())
        self.notes = list(envelope.notes)


def control_numbers_repeat(plan: SetPlan) -> bool:
    """Whether an ST02 comes twice in a group: the validator reports it at the second ST, which
    only a reader of the whole group sees (such a file is scrubbed the usual way)."""
    d = plan.delimiters
    seen: set[str | None] = set()
    for item in plan.items:
        if isinstance(item, SetSpan):
            elements = item.header.elements(d)
            number = elements[2].rstrip(d.component) if len(elements) > 2 else None
            if number in seen:
                return True
            seen.add(number)
        elif item.text.lstrip().startswith("GS"):
            seen = set()
    return False


class _Reading:
    """The input read again from its start, in order, hashed (pipeline's HashingStream): the sets'
    bytes copied into their files for the workers, a chunk at a time."""

    def __init__(self, source: BinaryIO, start: int) -> None:
        source.seek(start)
        self._stream = HashingStream(source)
        self.digest = self._stream.digest

    def copy_to(self, end: int, out: BinaryIO | None) -> None:
        """Read up to `end`, writing what is read into `out` (or nowhere)."""
        stream = self._stream
        while stream.read_so_far < end:
            chunk = stream.read(min(end - stream.read_so_far, _COPY_CHUNK))
            if not chunk:
                break
            if out is not None:
                out.write(chunk)


# Spool folders whose removal failed: a scrub that ran out of memory can leave too little to list
# and remove its spool (seen under the watcher's --memory-limit), and tempfile then forgets it.
# They are removed when the next spool is made, or when the process exits.
_LEFT_SPOOLS: list[str] = []


def new_spool(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A folder for the sets or chunks in flight (by_sets.py, by_chunks.py)."""
    sweep_spools()
    return tempfile.TemporaryDirectory(prefix=prefix)


def remove_spool(spool: tempfile.TemporaryDirectory[str]) -> None:
    """Remove `spool` and what is in it, or, when that fails, later (sweep_spools); whatever
    stopped the scrub is what the caller hears of, not this."""
    try:
        spool.cleanup()
    except (MemoryError, OSError):
        _LEFT_SPOOLS.append(spool.name)


@atexit.register
def sweep_spools() -> None:
    for path in list(_LEFT_SPOOLS):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            _LEFT_SPOOLS.remove(path)


def scrub_by_sets(source: BinaryIO, start: int, plan: SetPlan, rules: RuleSet, sinks: list[Sink], mode: FixMode,
                  progress: Progress | None, run: RunContext, workers: parallel.Workers,
                  validator_name: str) -> Summary:
    """Scrub the input whose sets `plan` found, its sets in `workers`; the outputs are those of one job."""
    # The rule set, the tables and whatever else the process holds stay out of the collector's
    # walks while it splices (the doses read back make many objects) and in the workers it forks.
    with parallel.frozen_heap():
        return _scrub_by_sets(source, start, plan, rules, sinks, mode, progress, run, workers, validator_name)


def _scrub_by_sets(source: BinaryIO, start: int, plan: SetPlan, rules: RuleSet, sinks: list[Sink], mode: FixMode,
                   progress: Progress | None, run: RunContext, workers: parallel.Workers,
                   validator_name: str) -> Summary:
    d = plan.delimiters
    makers = [sink.fragments() for sink in sinks]
    main = Pass2(_Delimited(d), _Records(), rules, sinks, mode, run, None, plan.size)
    reading = _Reading(source, start)
    sets: list[_SetStep] = []
    jobs: dict[int, tuple[SetJob, Future[Summary] | None]] = {}  # by the number of each job's first set
    covered: set[int] = set()  # the numbers of the other sets of the jobs
    state = {"next": 0, "handed": 0, "here": False}
    # The sets in flight, on disk (see the module's docstring); removed with what is in it when the
    # input ends, however it ends (the workers are stopped first when they may still write).
    spool = new_spool("scrubber-sets-")

    def hand_out(until: int, found_all: bool) -> None:
        """Hand out jobs until `until` have been; a run of small sets goes once it is complete
        (large enough, followed by a set of another group, or the last)."""
        while state["handed"] < until:
            group = _next_group(sets, state["next"], found_all)
            if not group:
                return
            first, last = group[0], group[-1]
            state["next"] += len(group)
            state["handed"] += 1
            reading.copy_to(first.span.start, None)
            path = os.path.join(spool.name, f"{first.number}.x12")
            with open(path, "wb") as out:
                out.write(_head(first.isa, first.gs))
                reading.copy_to(last.span.end, out)
            job = SetJob(first.number, first.isa, first.gs, [step.span for step in group], path,
                         first.interchange_errors, first.group_errors, d, validator_name, mode,
                         run.today, makers,  # type: ignore[arg-type]
                         last.span.end - first.span.start <= KEEP_SEGMENTS)
            future = None
            if not state["here"]:
                try:
                    future = workers.pool_for(rules).submit(_set_task, job)
                except RuntimeError as exc:  # the pool broke since the last set
                    _broken(exc)
            jobs[first.number] = (job, future)
            covered.update(step.number for step in group[1:])

    def _broken(exc: BaseException) -> None:
        if not state["here"]:
            _log.warning("scrubber: a worker process stopped (%s); the transaction sets it had not returned are "
                         "scrubbed again in the main process", type(exc).__name__)
        state["here"] = True
        workers.abandon()

    ahead = max(1, workers.jobs) * AHEAD
    done = 0
    try:
        # The envelope first, whole: every file-level error is raised before any output is begun.
        # The sets go to the workers as they are found.
        envelope = _EnvelopePass(plan, validator_name)
        steps = []
        for step in envelope:
            steps.append(step)
            if isinstance(step, _SetStep):
                if not sets:
                    # The guide's tables are loaded by now (the GS chose them): workers forked from
                    # here share them, and the code tables, rather than each reading its own.
                    workers.start(rules, share=True)
                sets.append(step)
                hand_out(ahead, found_all=False)
        hand_out(ahead, found_all=True)
        for sink in sinks:
            sink.begin(plan.prefix, d)
        for step in steps:
            if not isinstance(step, _SetStep):
                deliver_all(sinks, step)
                continue
            if step.number in covered:  # (done with the first set of its job)
                covered.discard(step.number)
                continue
            job, future = jobs.pop(step.number)
            done_there = None
            if future is not None:
                if not future.done():
                    # The doses of the sets spliced wait, pickled, in the run's history (its
                    # record_pickled): they are read and inserted while a worker is awaited, not in
                    # a splice; the last set's, spliced after every worker is done, never are.
                    run.history.flush()
                try:
                    done_there = workers.result(future)
                except Exception as exc:  # a worker died, or the set could not be sent
                    if isinstance(exc, BrokenProcessPool):
                        _broken(exc)
            hand_out(done + 1 + ahead, found_all=True)
            if done_there is not None and _splice(job, sinks, run.history):
                _merge(main.summary, done_there)
            else:  # a patient's earlier claims count, or no worker did it: here, against the run's history
                _merge(main.summary, scrub_set(job, rules, sinks, run.history))
            _forget(job)
            done += 1
            if progress is not None:
                progress(job.spans[-1].end, main.summary.claims)
        main.finish(envelope.notes, plan.trailer)
    except BaseException as exc:
        # The input stops (a file-level error, an output that cannot be written, a signal): the sets
        # in flight are of no use. The workers are stopped rather than their futures cancelled (see
        # Workers.abandon); the next input gets new ones.
        if not isinstance(exc, Exception) or any(f is not None and not f.done() for _, f in jobs.values()):
            workers.abandon()
        raise
    finally:
        remove_spool(spool)
    reading.copy_to(plan.size, None)
    if reading.digest.digest() != plan.digest:
        raise InputError("the input changed while it was being scrubbed (it is still being written?)",
                         code="input.changed")
    return main.summary


def _next_group(sets: list[_SetStep], start: int, found_all: bool) -> list[_SetStep]:
    """The sets of the next job, from `start`: one set, or a run of consecutive sets of one ISA and
    GS whose bytes stay under GROUP_BYTES; empty when the run may still grow (not `found_all`)."""
    if start >= len(sets):
        return []
    first = sets[start]
    end = start + 1
    while (end < len(sets) and sets[end].isa is first.isa and sets[end].gs is first.gs
           and sets[end].span.end - first.span.start <= GROUP_BYTES):
        end += 1
    if end == len(sets) and not found_all and sets[-1].span.end - first.span.start < GROUP_BYTES:
        return []  # the next set found may join it
    return sets[start:end]


def _splice(job: SetJob | Any, sinks: list[Sink], history: RunHistory, chunk: bool = False) -> bool:
    """Splice the parts a worker rendered of a set (or of a chunk: by_chunks.py), and record its
    doses, unless a patient its checks asked for has doses in `history` (False: the parts are not
    exact). What the worker wrote is read one pickle at a time (see render_parts), so one output's
    part is in memory."""
    with open(job.parts_path, "rb") as stored:
        if history.knows_any_key(pickle.load(stored)):
            return False
        for sink in sinks:
            part = pickle.load(stored)
            if chunk:
                sink.splice_chunk(part)
            else:
                sink.splice(part)
        history.record_pickled(pickle.load(stored), stored.read())  # (the rows are read when needed)
    return True


def _forget(job: SetJob) -> None:
    """A set spliced or scrubbed here: its file and its parts' are of no more use."""
    for path in (job.path, job.parts_path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _merge(summary: Summary, part: Summary) -> None:
    """Add a set's counts, in input order (the order of first appearance of each rule is kept)."""
    summary.claims += part.claims
    summary.accepted += part.accepted
    summary.corrected += part.corrected
    summary.rejected += part.rejected
    summary.unattributed.extend(part.unattributed)
    summary.by_rule.update(part.by_rule)
    for rule, message in part.messages.items():
        summary.messages.setdefault(rule, message)
    summary.errors.extend(part.errors)


def _in_parts(sink: Sink) -> bool:
    """Whether the sink can be written in parts: it makes them, and a subclass has not changed what
    it does with a set's events since (sink.renders_as_its_parts)."""
    return sink.fragments() is not None and renders_as_its_parts(sink, "fragments")


def plan_for(source: BinaryIO, sinks: list[Sink]) -> SetPlan | None:
    """The plan of an input to scrub by sets, or None to scrub it the usual way: an output that
    cannot be written in parts, a single set (or one larger than LARGEST_SET), a file the scan
    cannot speak for exactly. Raises InputError where pass 1 would, on the ISA."""
    if not sinks or not all(_in_parts(sink) for sink in sinks):
        return None
    plan = scan(source, LARGEST_SET)
    if plan is None or len(plan.sets) < 2 or control_numbers_repeat(plan):
        return None
    return plan
