"""Scrub one claim file: validate it, then read, check, fix and hand each claim to the outputs.

Two passes over the input, each a stream:

1. the implementation-guide validation (pyx12's walker, SNIP 1-2) and the envelope checks read
   the whole file first. An input that cannot be read as an 837 is refused here, before any
   output is begun; the structural errors found are kept per transaction set in a temporary file.
2. the claims are read one at a time, each with the structural errors that reach it (its own,
   its HL loops', its transaction header's, its group's and interchange's), checked, fixed, and
   handed to the sinks (the outputs) in file order.

Knowing every error before the first claim goes out is what lets a claim stream: a problem
that pyx12 notices only at a set's SE still stands in the way of that set's first claim.
Memory holds one claim, the HL loops above it and the structural errors of one set.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
import itertools
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import InputError
from ..model.build import HLNode, TransactionReader
from ..model.claim import Claim
from ..rules.engine import REJECTED, ClaimResult, FixMode, LocalResult, settle_claim
from ..rules.findings import ClaimContext
from ..rules.history import RunHistory
from ..rules.history_checks import doses_of
from ..rules.ruleset import RuleSet
from ..rules.syntax import shown
from ..x12 import structural
from ..x12.envelope import (
    EnvelopeReader,
    Group,
    GroupEnd,
    Interchange,
    InterchangeEnd,
    TransactionEnd,
    TransactionSet,
)
from ..x12.guide import DEFAULT_VALIDATOR, make_validator
from ..x12.structural import SetErrors, StructuralError
from ..x12.tokenizer import NOT_AN_ID, Segment, SegmentReader, segment_id
from .loops_without_claims import LoopsWithoutClaims, loop_name
from .parallel import CheckFailed, ClaimWork, OrderedChecks, Workers, check_all_locally, min_parallel_bytes
from .sink import ScrubbedClaim, SetSegments, Sink, TransactionClosed, Unattributed
from .summary import Summary

Progress = Callable[[int, int], None]  # (bytes read, claims scrubbed)

# Of a scrub's time, the validation pass takes about this share, by validator: progress counts
# the two passes as one. (The compiled validator alone takes 0.40 s of a 1.53 s scrub of 10,000
# claims, bench/run.py; pyx12's walker most of it.)
PASS1_SHARES = {"compiled": 0.25, "pyx12": 0.85}


def pass1_share(validator: str) -> float:
    return PASS1_SHARES.get(validator, 0.5)


@dataclass
class RunContext:
    """What lasts across the files of one run: the claims seen so far, the date of the run, and
    the worker processes that check claims when it runs with more than one job (owned by the
    caller, who closes them; see output/parallel.py)."""

    history: RunHistory
    today: dt.date
    workers: Workers | None = None

    @classmethod
    def new(cls, today: dt.date | None = None, workers: Workers | None = None) -> RunContext:
        return cls(RunHistory(), today or dt.date.today(), workers)

    def close(self) -> None:
        self.history.close()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The collector would walk the claim model's objects thousands of times for nothing (the
    scrubber makes few reference cycles: 9 objects collected in a set of 5,000 claims): collect
    less often while scrubbing. The middle generation too: a worker holds its set's segments for
    both passes (by_sets.KEEP_SEGMENTS), and after ten young collections every segment was walked
    once more, 10-19 ms of a set of 5,000 claims, where one job makes no such collection at 10,000
    claims."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 10_000), max(thresholds[1], 100), thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def scrub_stream(
    source: BinaryIO,
    rules: RuleSet,
    sinks: list[Sink],
    mode: FixMode = FixMode.SAFE,
    progress: Progress | None = None,
    run: RunContext | None = None,
    *,
    validator: str = DEFAULT_VALIDATOR,
    jobs: int = 1,
) -> Summary:
    """Scrub one 837 from `source`, handing every claim to the `sinks` (the outputs) in file order.

    Raises InputError when the input is not an 837 the scrubber reads: then no sink has been
    fed anything. A source that cannot seek (a pipe) is copied to a temporary file first. Pass
    the same `run` to several calls to check claims across files (quantity limits, cycles).
    `validator` chooses the implementation-guide validator: "compiled" (the default) or "pyx12"
    (pyx12's own walker, the second opinion). `jobs` > 1 checks the claims in that many worker
    processes (for this call only; a `run` with `workers` uses those): the outputs are the same.
    """
    run = run or RunContext.new()
    own = run.workers is None and jobs > 1
    if own:
        run = dataclasses.replace(run, workers=Workers(jobs))
    try:
        with fewer_collections(), _seekable(source) as stream:
            return _scrub(stream, rules, sinks, mode, progress, run, validator)
    finally:
        if own and run.workers is not None:
            run.workers.abandon()


@contextlib.contextmanager
def _seekable(source: BinaryIO) -> Iterator[BinaryIO]:
    try:
        seekable = source.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        yield source
        return
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, 1 << 20)
        spool.seek(0)
        yield spool


class HashingStream:
    """Reads at most `limit` bytes of a stream and hashes them: the second pass must read the
    very bytes the first one validated (a file still being written could have grown)."""

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self.digest = hashlib.sha256()
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        if self._limit is not None:
            left = self._limit - self.read_so_far
            size = left if size < 0 else min(size, left)
            if size <= 0:
                return b""
        data = self._stream.read(size)
        self.read_so_far += len(data)
        self.digest.update(data)
        return data


class _ValidationLog:
    """The first pass's structural errors, one record per interchange, group and transaction
    set in file order, in a temporary file: memory holds the errors of one set at a time."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())

    def write(self, record: Any) -> None:
        pickle.dump(record, self._file, pickle.HIGHEST_PROTOCOL)

    def rewind(self) -> None:
        self._file.flush()
        self._file.seek(0)

    def read(self) -> Any:
        return pickle.load(self._file)

    def close(self) -> None:
        self._file.close()


@dataclass
class SetCheck:
    """What the first pass found in one transaction set."""

    errors: list[StructuralError]
    count: int  # segments from ST to SE
    indented_trailer: bool = False  # the SE starts with white space (see _left_behind)


def _scrub(source: BinaryIO, rules: RuleSet, sinks: list[Sink], mode: FixMode, progress: Progress | None,
           run: RunContext, validator: str = DEFAULT_VALIDATOR) -> Summary:
    start = source.tell()
    workers = _workers_for(source, start, run)
    if workers is not None:
        if validator == "compiled":
            from . import by_sets  # (it builds on this module)

            plan = by_sets.plan_for(source, sinks)
            source.seek(start)
            if plan is not None:  # (it starts the workers once it has read what they can share)
                return by_sets.scrub_by_sets(source, start, plan, rules, sinks, mode, progress, run, workers,
                                             validator)
            from . import by_chunks

            if by_chunks.chunks_possible(sinks) and chunked_sets():
                # A file of one large set (or sets the scan cannot hand out whole): cut into chunks.
                return by_chunks.scrub_by_chunks(source, start, rules, sinks, mode, progress, run, workers, validator)
        workers.start(rules)  # they start while pass 1 runs
    first = HashingStream(source)
    log = _ValidationLog()
    try:
        notes = _validate(first, log, progress, validator)
        source.seek(start)
        second = HashingStream(source, limit=first.read_so_far)
        log.rewind()
        try:
            scrub = Pass2(SegmentReader(second), log, rules, sinks, mode, run, progress,  # type: ignore[arg-type]
                          first.read_so_far, workers)
            scrub.pass1_share = pass1_share(validator)
            summary = scrub.run(notes)
        except InputError:
            # Pass 1 read these bytes without a file-level error: if pass 2 finds one (a set that
            # ends early), the bytes are not the same. Say so, rather than what pass 2 tripped on.
            while second.read(1 << 20):
                pass
            if second.digest.digest() != first.digest.digest():
                raise _changed() from None
            raise
        if second.digest.digest() != first.digest.digest():
            raise _changed()
        return summary
    finally:
        log.close()


# With one job, claims are checked in batches: the claim model of up to this many claims (or of
# BATCH_SEGMENTS segments, whichever comes first), then their checks, then the checks across
# claims, then the sinks, each step over the whole batch. Each step then runs with its own code
# and tables warm in the processor's caches: a claim at a time, the steps took turns evicting each
# other's, and the scrub took 12% longer (bench/run.py, 10,000 claims: 1.53 against 1.35 s; 16
# claims a batch gave 1.43 s, 128 1.46 s). The batch holds a few dozen claims: memory stays
# bounded by the largest claim.
BATCH_CLAIMS = 64
BATCH_SEGMENTS = 1024


CHUNKS_ENV = "SCRUBBER_CHUNKS"


def chunked_sets() -> bool:
    """Whether a file that cannot be scrubbed by whole sets is cut into chunks for the workers
    (by_chunks.py), rather than checked claim by claim (parallel.py): `SCRUBBER_CHUNKS=0` says not,
    to compare the two."""
    return os.environ.get(CHUNKS_ENV, "1") != "0"


def _changed() -> InputError:
    return InputError("the input changed while it was being scrubbed (it is still being written?)",
                      code="input.changed")


def _workers_for(source: BinaryIO, start: int, run: RunContext) -> Workers | None:
    """The run's workers, if it has some and the input is large enough to be worth them."""
    workers = run.workers
    if workers is None or workers.jobs < 2:
        return None
    size = source.seek(0, 2) - start
    source.seek(start)
    return workers if size >= min_parallel_bytes() else None


def _validate(source: HashingStream, log: _ValidationLog, progress: Progress | None,
              validator_name: str = DEFAULT_VALIDATOR) -> list[Any]:
    """Pass 1: the envelope and the implementation guide. Raises InputError for a file-level problem."""
    reader = SegmentReader(source)  # type: ignore[arg-type]
    d = reader.delimiters
    validator = make_validator(validator_name, d)
    envelope = EnvelopeReader(reader, d, validator.feed)
    for sets, _ in enumerate(Pass1(validator, log).sets_closed(envelope), 1):
        if progress is not None and sets % 8 == 0:
            progress(int(reader.bytes_read * pass1_share(validator_name)), 0)
    validator.finish()
    fail_on(validator.take_errors())
    return list(envelope.notes)


class Pass1:
    """What pass 1 makes of each envelope event: a record in the log per interchange, group and
    transaction set (the errors found in it), and a failure for an error at GE or IEA. Used for a
    whole file, and for one transaction set at a time (output/by_sets.py)."""

    def __init__(self, validator: Any, log: Any) -> None:
        self.validator = validator
        self.log = log
        self.raw: SetErrors = SetErrors()

    def sets_closed(self, events: Iterable[Any]) -> Iterator[None]:
        """Take the events; yields when one closed a transaction set."""
        for event in events:
            if type(event) is Segment:
                # (event's first case, inlined: nearly every event is a body segment)
                text = event.text
                if not text.isascii() or not text.strip():
                    self.raw.extend(raw_problems([event]))
            elif self.event(event):
                yield

    def event(self, event: Any) -> bool:
        """Take one event; True when it closed a transaction set."""
        validator = self.validator
        if isinstance(event, Segment):
            text = event.text
            if not text.isascii() or not text.strip():
                self.raw.extend(raw_problems([event]))
        elif isinstance(event, TransactionSet):
            self.raw = SetErrors()
            self.raw.extend(raw_problems([event.header]))
        elif isinstance(event, TransactionEnd):
            self.raw.extend(raw_problems([event.trailer]))
            errors = within_limit(validator.take_errors(), self.raw, event.transaction)
            self.log.write(SetCheck(errors, event.count, _indented(event.trailer)))
            self.raw = SetErrors()
            return True
        elif isinstance(event, Interchange | Group):
            # (The ISA's or GS's own errors: a few at most, never the limit's.)
            self.log.write(raw_problems([event.header]) + validator.take_errors())
        else:
            fail_on(validator.take_errors())
        return False


class Pass2:
    """Pass 2: the claims, one at a time. `reader` is the file's SegmentReader (pass 1's records in
    `log`); by_sets.py also drives one transaction set at a time through `event`."""

    def __init__(self, reader: Any, log: Any, rules: RuleSet, sinks: list[Sink],
                 mode: FixMode, run: RunContext, progress: Progress | None, size: int,
                 workers: Workers | None = None) -> None:
        self.reader = reader
        self.d = reader.delimiters
        self.log = log
        self.rules = rules
        self.sinks = sinks
        self.mode = mode
        self.run_context = run
        self.progress = progress
        self.size = size
        self.summary = Summary()
        self.interchange_errors: list[StructuralError] = []
        self.group_errors: list[StructuralError] = []
        self.ordered = OrderedChecks(workers, rules, mode, run.today) if workers is not None else None
        self._transaction: _OpenSet | None = None
        self._keep_segments = any(sink.wants_set_segments for sink in sinks)
        # Claims read, waiting to be checked as a batch (deliver_batch), with their segments.
        self._batch: list[tuple[_OpenSet, ClaimWork]] = []
        self._batch_segments = 0
        self.pass1_share = pass1_share(DEFAULT_VALIDATOR)  # (of the progress shown: _scrub sets it)

    def run(self, notes: list[Any]) -> Summary:
        if self.ordered is None:
            return self._run(notes)
        try:
            return self._run(notes)
        except BaseException as exc:
            self.ordered.abandon(interrupted=not isinstance(exc, Exception))
            raise

    def _in_order(self, action: Callable[[], None]) -> None:
        """Do `action` once the claims read before it are delivered (at once with one job)."""
        if self.ordered is None:
            action()
        else:
            self.ordered.event(action)

    def _run(self, notes: list[Any]) -> Summary:
        sinks = self.sinks
        for sink in sinks:
            sink.begin(self.reader.prefix, self.d)
        segments = iter(self.reader)
        envelope = EnvelopeReader(segments, self.d)
        for event in envelope:
            self.event(event)
            if type(event) is TransactionSet:
                self.read_body(segments, envelope)
        if self.ordered is not None:
            self.ordered.finish()
        self.finish(notes, self.reader.trailer)
        return self.summary

    def read_body(self, segments: Iterator[Segment], envelope: EnvelopeReader) -> None:
        """The body of the set just opened (`event` took its ST), from `segments`, which `envelope`
        reads: pass 1 counted the set's segments and checked its envelope, so the body is read
        straight from the tokenizer, and the envelope reader goes on at its SE."""
        transaction = self._transaction
        assert transaction is not None
        body = transaction.check.count - 2
        feed = transaction.feed
        for segment in itertools.islice(segments, body):
            claim = feed(segment)
            if claim is not None:
                self.deliver_ended(transaction, claim)
        envelope.skip_segments(body)

    def event(self, event: Any, deliver_envelope: bool = True) -> None:
        """One envelope event of pass 2. The interchange and group events are handed to the sinks
        only when `deliver_envelope` (by_sets.py hands them on itself)."""
        transaction = self._transaction
        if isinstance(event, Segment):
            assert transaction is not None
            claim = transaction.feed(event)
            if claim is not None:
                self.deliver_ended(transaction, claim)
            return
        if isinstance(event, TransactionSet):
            check: SetCheck = self.log.read()
            self._transaction = _OpenSet(event, self.d, check, self.interchange_errors + self.group_errors,
                                         self._keep_segments)
            return
        if isinstance(event, TransactionEnd):
            assert transaction is not None
            claim = transaction.finish(event)
            if claim is not None:
                self.deliver_ended(transaction, claim)
            self._close_set(transaction, event)
            self._transaction = None
            return
        if isinstance(event, Interchange):
            self.interchange_errors = self.log.read()
            self.group_errors = []
        elif isinstance(event, Group):
            self.group_errors = self.log.read()
        if deliver_envelope:
            self._in_order(functools.partial(deliver_all, self.sinks, event))

    def finish(self, notes: list[Any], trailer: str) -> None:
        self.deliver_batch()  # (none is left: a set's end delivers its claims)
        # A wrong count is fixed wherever claims go out: the writer recomputes every count.
        goes_out = self.summary.accepted + self.summary.corrected > 0
        for note in notes:
            self.summary.errors.append(
                {"code": note.code, "message": note.message, "segment": note.segment, "offset": note.offset,
                 "fixed": goes_out}
            )
        for sink in self.sinks:
            sink.finish(self.summary, trailer)

    def deliver_ended(self, transaction: _OpenSet, claim: Claim) -> None:
        """Deliver the claim `transaction` returned, then those that ended with it (take_also)."""
        self._deliver_claim(transaction, claim)
        if transaction.also:
            for other in transaction.take_also():
                self._deliver_claim(transaction, other)

    def _deliver_claim(self, transaction: _OpenSet, claim: Claim) -> None:
        work = ClaimWork(claim, transaction.errors_of(claim), transaction.transaction.header.index, self.d)
        if self.ordered is not None:
            self.ordered.claim(work, functools.partial(self._settle, transaction.transaction,
                                                       transaction.reader.header))
            return
        batch = self._batch
        batch.append((transaction, work))
        self._batch_segments += len(claim.segments)
        if len(batch) >= BATCH_CLAIMS or self._batch_segments >= BATCH_SEGMENTS:
            self.deliver_batch()

    def deliver_batch(self) -> None:
        """Check, settle and hand to the sinks the claims delivered since the last batch, each step
        for the whole batch in turn (see BATCH_CLAIMS), in input order. Called when the batch is
        full, at the end of a set, and by whoever delivers claims outside a set (by_chunks.py)."""
        batch, self._batch = self._batch, []
        self._batch_segments = 0
        if not batch:
            return
        checked = check_all_locally([work for _, work in batch], self.rules, self.mode, self.run_context.today)
        settled = [self._across(work, local) for (_, work), local in zip(batch, checked, strict=True)]
        for (transaction, work), outcome in zip(batch, settled, strict=True):
            self._hand_over(transaction.transaction, transaction.reader.header, work, outcome)

    def _settle(self, transaction: TransactionSet, header: list[Segment], work: ClaimWork,
                local: LocalResult | CheckFailed) -> None:
        """In input order: the checks across claims, the disposition, the history, the sinks."""
        self._hand_over(transaction, header, work, self._across(work, local))

    def _across(self, work: ClaimWork, local: LocalResult | CheckFailed) -> ClaimResult | Unattributed:
        """In input order: the checks across claims, the disposition and the history; a claim whose
        checks failed is held back (Unattributed)."""
        claim = work.claim
        try:
            if isinstance(local, CheckFailed):
                raise _RuleFault(local.kind)
            return self._check_across(local, work.base_index)
        except MemoryError:
            raise  # (engine.check_claims_locally says why)
        except Exception as exc:  # a fault in the rules must not take down the file: this claim is held back
            kind = exc.kind if isinstance(exc, _RuleFault) else type(exc).__name__
            return Unattributed(claim.claim_id.segment.index if claim.claim_id else claim.segments[0].index,
                                claim.id or None,
                                f"internal error while checking the claim ({kind}); it was "
                                "not delivered: report this to the scrubber's maintainers")

    def _hand_over(self, transaction: TransactionSet, header: list[Segment], work: ClaimWork,
                   outcome: ClaimResult | Unattributed) -> None:
        """In input order: the claim's outcome to the summary and the sinks."""
        if isinstance(outcome, Unattributed):
            self.summary.add_unattributed(outcome)
            for sink in self.sinks:
                sink.unattributed(outcome)
            return
        self.summary.add(outcome)
        scrubbed = ScrubbedClaim(outcome, transaction, header, [error for error, _ in work.structural])
        for sink in self.sinks:
            sink.claim(scrubbed)
        if self.progress is not None and self.summary.claims % 256 == 0:
            share = self.reader.bytes_read / self.size if self.size else 1.0
            before = self.pass1_share
            self.progress(int(self.size * (before + (1 - before) * share)), self.summary.claims)

    def _check_across(self, local: LocalResult, base_index: int) -> ClaimResult:
        rules = self.rules
        run = self.run_context
        claim = local.claim
        policy = rules.policy_for(claim.payer_class_code, claim.payer_id_code)
        context = ClaimContext(rules, policy, run.history, run.today, self.d, base_index)
        result = settle_claim(local, context)
        if result.final is not None:
            # The next claims are held against this one (quantity over a window, cycles).
            run.history.record(claim.patient_key, doses_of(result.final, rules))
        return result

    def _close_set(self, transaction: _OpenSet, event: TransactionEnd) -> None:
        self.deliver_batch()
        errors = transaction.check.errors
        closed = TransactionClosed(
            transaction=event.transaction,
            trailer=event.trailer,
            count=event.count,
            errors=errors,
            envelope_errors=transaction.envelope_errors,
            segments=transaction.captured,
            claims=transaction.reader.claims_read,
        )
        self._in_order(functools.partial(self._set_closed, closed, event, transaction.without_claims))

    def _set_closed(self, closed: TransactionClosed, event: TransactionEnd, without_claims: LoopsWithoutClaims) -> None:
        if closed.errors and closed.errors[-1].code == structural.TOO_MANY_ERRORS:
            self.summary.errors.append(_too_many_errors(event, closed.errors[-1]))
        if closed.claims == 0:
            self.summary.errors.append(_no_claims(event, closed.errors))
        elif without_claims.count:
            self.summary.errors.append(without_claims.as_error())
        for sink in self.sinks:
            sink.transaction_end(closed)


@dataclass
class _OpenSet:
    """A transaction set being read in pass 2, with the errors pass 1 found in it, each handed to
    the loop (claim, HL loop, header) that holds it as the segments go by."""

    transaction: TransactionSet
    d: Any
    check: SetCheck
    envelope_errors: list[StructuralError]
    keep_segments: bool  # for a sink that names the segments in error (the 999)
    reader: TransactionReader = field(init=False)
    by_position: dict[int, list[StructuralError]] = field(init=False)
    shared: list[tuple[StructuralError, str]] = field(init=False)  # reach every claim of the set
    left_at_trailer: list[StructuralError] = field(init=False)  # see _left_behind
    claim_errors: list[tuple[StructuralError, str]] = field(init=False)  # the open claim's own
    sealed: list[tuple[StructuralError, str]] = field(init=False)  # those of the claim just closed
    _sealed: dict[int, list[tuple[StructuralError, str]]] = field(init=False)  # by id(claim), until taken
    also: list[Claim] = field(init=False)  # claims that ended with the one returned (take_also)
    without_claims: LoopsWithoutClaims = field(init=False)  # the loops that ended holding no claim
    captured: SetSegments = field(init=False)
    wanted: set[int] = field(init=False)  # the positions `captured` keeps
    marked: frozenset[int] = field(init=False)  # those and the positions with errors: where feed looks closer

    def __post_init__(self) -> None:
        self.reader = TransactionReader(self.transaction, self.d)
        base = self.transaction.header.index
        count = self.check.count
        self.by_position = {}
        self.shared = [(e, _ENVELOPE_WHERE) for e in self.envelope_errors]
        self.left_at_trailer = []
        for error in self.check.errors:
            position = error.segment - base
            if 0 < position < count - 1:
                self.by_position.setdefault(position, []).append(error)
            elif position == count - 1 and _left_behind(error, self.check.indented_trailer):
                self.left_at_trailer.append(error)  # (finish: the last claim's, as a rule)
            else:  # the ST, the SE, or outside the set: in the way of every claim
                where = _HEADER_WHERE if 0 <= position < count else _ENVELOPE_WHERE
                self.shared.append((error, where))
        self.claim_errors = []
        self.sealed = []
        self._sealed = {}
        self.also = []
        self.without_claims = LoopsWithoutClaims()
        self.reader.empty_loop = self.without_claims.add
        self.captured = SetSegments(count, self.check.errors if self.keep_segments else [], base)
        self.captured.offer(0, self.transaction.header)
        self.wanted = self.captured.wanted
        self.marked = frozenset(self.wanted).union(self.by_position)

    def feed(self, segment: Segment) -> Claim | None:
        # (Runs once a segment of every set: the common case makes no call it can avoid.)
        reader = self.reader
        position = reader.position
        done = reader.feed(segment)
        if done is not None:
            # The claim closed before this segment: what it gathered goes with it.
            self._seal(done)
            if reader.more:
                self._seal_more()
        claim = reader.claim
        # Only the first segment of a loop or claim (its HL or CLM) can break the hierarchy: a
        # claim outside a subscriber loop, or a misplaced loop (_structure says why).
        if claim is not None:
            if claim.first == position:
                node = claim.hl
                if node is None or node.level == "20":
                    self._structure(claim, segment)
        else:
            node = reader.hl
            if node is not None and node.position == position and node.misplaced:
                self._structure(node, segment)
        if position in self.marked:
            self._marked(position, segment, claim, done)
        return done

    def _marked(self, position: int, segment: Segment, claim: Claim | None, done: Claim | None) -> None:
        """A segment `captured` keeps, or one with structural errors: handed to whom it belongs."""
        self.captured.offer(position, segment)  # (it keeps only those it wants)
        found = self.by_position.get(position)
        if found and done is not None:
            # Those about a segment before this one: the claim that closed here held it.
            indented = _indented(segment)
            here = []
            for error in found:
                if _left_behind(error, indented):
                    self.sealed.append((error, ""))
                else:
                    here.append(error)
            found = here
        if found:
            reader = self.reader
            owner = claim or reader.hl
            if claim is not None:
                self.claim_errors.extend((e, "") for e in found)
            elif isinstance(owner, HLNode):
                where = f"in the {loop_name(owner)}, shared with other claims: "
                owner.errors.extend((e, where) for e in found)
            else:
                self.shared.extend((e, _HEADER_WHERE) for e in found)

    def _structure(self, owner: Claim | HLNode, segment: Segment) -> None:
        """What the claim model finds broken in the HL hierarchy, beyond the guide's errors, at the
        first segment of a loop or claim (`owner`)."""
        if isinstance(owner, HLNode) and owner.misplaced:
            error = StructuralError(segment.index, "HL", "HL02", "HL02", "model",
                                    f"HL02 names HL {shown(owner.parent_number)!r}, which is not a loop open above "
                                    "this one: the hierarchy is broken")
            owner.errors.append((error, f"in the {loop_name(owner)}, shared with other claims: "))
        elif isinstance(owner, Claim) and owner.hl is not None and owner.hl.level == "20":
            # A claim right under the billing provider loop (no subscriber loop above it): the
            # provider's own segments may follow it, so none of the provider's claims can go out.
            node = owner.hl
            error = StructuralError(segment.index, "CLM", None, "CLM", "model",
                                    "a claim (CLM) inside the billing provider loop, with no subscriber loop (HL "
                                    "22) above it: the loop's structure cannot be trusted")
            node.errors.append((error, f"in the {loop_name(node)}, shared with other claims: "))
        elif isinstance(owner, Claim) and owner.hl is None:
            # A claim inside the transaction header: the header's own loops (submitter, receiver)
            # may follow it, so no claim of the set can go out with a header that can be trusted.
            error = StructuralError(segment.index, "CLM", None, "CLM", "model",
                                    "a claim (CLM) before the first HL, inside the transaction header: the set's "
                                    "structure cannot be trusted")
            self.shared.append((error, _HEADER_WHERE))

    def finish(self, event: TransactionEnd) -> Claim | None:
        self.captured.offer(event.count - 1, event.trailer)
        return self.end_at(event.count - 1, None)

    def end_at(self, position: int, ending: int | None) -> Claim | None:
        """What ends before the segment at `position`: the claim open and the `ending` innermost HL
        loops open (None: the SE, where all of them end), sealed; see `feed` for the claims after
        the one returned."""
        reader = self.reader
        done = reader.finish(position) if ending is None else reader.close_at(position, ending)
        if done is not None:
            self._seal(done)
            if reader.more:
                self._seal_more()
        if ending is None:
            # Errors the validator reported at the SE about a segment before it: the last claim's.
            if done is not None:
                self.sealed.extend((e, "") for e in self.left_at_trailer)
            else:
                self.shared.extend((e, _HEADER_WHERE) for e in self.left_at_trailer)
        return done

    def _seal_more(self) -> None:
        """Claims with no CLM that ended with the one just sealed (TransactionReader.more), sealed
        in input order: `also` holds them for the caller, after that one."""
        more, self.reader.more = self.reader.more, []
        for claim in more:
            self._seal(claim)
        self.also.extend(more)

    def take_also(self) -> list[Claim]:
        """The claims that ended with the one feed, finish or end_at returned, to deliver after it."""
        also, self.also = self.also, []
        return also

    def _seal(self, claim: Claim) -> None:
        # (Each claim's own list: errors_of takes it; `sealed` is the last one's, for the errors
        # reported at the segment that ended it.)
        self.sealed, self.claim_errors = self.claim_errors, []
        self._sealed[id(claim)] = self.sealed
        if claim.missing_clm:
            self._seal_without_clm(claim)
        elif not claim.lines and not self.sealed:
            # The guide requires a service line (loop 2400) in every claim; pyx12 misses its absence
            # when the next segment is another CLM, so a claim with none would go out.
            first = claim.segments[0]
            self.sealed.append((StructuralError(first.index, "LX", None, "I7", "model",
                                                'Mandatory loop "Service Line Number" (2400) missing'), ""))
        elif not self.sealed:
            self._check_lines(claim)

    def _check_lines(self, claim: Claim) -> None:
        """The segments the guide requires in every service line, where the validator may not see
        them missing: SV1 (837P) or SV2 (837I), and the service date (DTP*472) of an 837P line.
        When a claim ends right after an LX, pyx12 reports the missing segment at the next
        segment, an HL or another claim's CLM, or not at all when what follows cannot be placed:
        then the error reaches another loop or claim, or none. And when an HL it cannot place
        (a level the guide does not have) ends the claim, it reads on in the claim's last line,
        and takes a later DTP*472 for its date. Either way the claim would go out incomplete (two
        fuzzing finds: its corrected file, scrubbed again, was rejected)."""
        for line in claim.lines:
            if line.procedure_segment is None:
                lx = claim.segments[line.first - claim.first]
                seg_id, name = ("SV2", "Institutional Service Line") if claim.is_institutional \
                    else ("SV1", "Professional Service")
                self.sealed.append((StructuralError(lx.index, seg_id, None, "3", "model",
                                                    f'Mandatory segment "{name}" ({seg_id}) missing'), ""))
                return
            if line.service_date is None and not claim.is_institutional:
                # (At the SV1, as pyx12 reports it in a line with nothing between the two.)
                self.sealed.append((StructuralError(line.procedure_segment.index, "DTP", None, "3", "model",
                                                    'Mandatory segment "Date - Service Date" (DTP) missing'), ""))
                return

    def _seal_without_clm(self, claim: Claim) -> None:
        """A claim with no CLM (TransactionReader.claim_without_clm): the errors found in its
        segments, which the pipeline handed to its HL loop as they went by, are its own; and it
        is rejected, with the reason first, even where the guide's walk placed every segment."""
        node = claim.hl
        assert node is not None
        first = claim.segments[0]
        kept, own = [], []
        for error, where in node.errors:  # type: ignore[misc]
            (own if error.segment >= first.index else kept).append((error, where))
        node.errors = kept
        loop = loop_name(node)
        seg_id = segment_id(first.text.split(self.d.element)[0])
        reason = StructuralError(first.index, "CLM", None, "3", "model",
                                 f'Mandatory segment "Claim Information" (CLM) missing: the {loop} holds no claim, '
                                 f"and segments the loop does not have follow its own, from {shown(seg_id)} on: "
                                 "if they are a claim, its CLM is missing or damaged")
        self.sealed[:0] = [(reason, ""), *((error, "") for error, _where in own)]

    def errors_of(self, claim: Claim) -> list[tuple[StructuralError, str]]:
        """The structural errors that stand in the way of `claim`: the set's, its HL loops', its own."""
        found = list(self.shared)
        if claim.hl is not None:
            for node in claim.hl.chain():
                found.extend(node.errors)  # type: ignore[arg-type]
        found.extend(self._sealed.pop(id(claim), ()))
        return found


_ENVELOPE_WHERE = "in the interchange or group header, shared by every claim in it: "
_HEADER_WHERE = "in the transaction header, shared with other claims: "


def _left_behind(error: StructuralError, indented: bool) -> bool:
    """An error the validator holds back from a segment it could not place, and reports at the
    next segment it places (pyx12 does so: an HL or CLM, or the SE), about a segment before it:
    an LX numbered out of count, or an invalid segment id, reported at a segment of another id; or
    white space before an id, reported at a segment that has none (`indented`: this one has)."""
    if error.code == "LX":
        return error.seg_id != "LX"
    if error.code == "1":
        if error.message.startswith(_INVALID_ID):
            return error.message != f'{_INVALID_ID}"{error.seg_id}" is invalid'
        return error.message in _WHITE_SPACE and not indented
    return False


def _indented(segment: Segment) -> bool:
    text = segment.text
    return bool(text) and text[0] in NOT_AN_ID


# (The messages pyx12's reader gives, as the compiled validator's.)
_INVALID_ID = "Segment identifier "
_WHITE_SPACE = frozenset(("Segment contains a leading space", "Segment starts with white space or a control character"))


class _RuleFault(Exception):
    """A claim's checks raised in a worker: `kind` is the exception's type name."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def deliver_all(sinks: list[Sink], event: Interchange | Group | GroupEnd | InterchangeEnd) -> None:
    for sink in sinks:
        _deliver(sink, event)


def _deliver(sink: Sink, event: Interchange | Group | GroupEnd | InterchangeEnd) -> None:
    if isinstance(event, Interchange):
        sink.interchange(event)
    elif isinstance(event, Group):
        sink.group(event)
    elif isinstance(event, GroupEnd):
        sink.group_end(event)
    else:
        sink.interchange_end(event)


def fail_on(errors: list[StructuralError]) -> None:
    """Problems found at GE, IEA or the end of the input come after the claims they would
    concern, so they can only fail the file (the envelope reader fails the usual ones first)."""
    for error in errors:
        raise InputError(f"{shown(error.seg_id)}: {error.message}: the envelope cannot be trusted",
                         code="envelope.invalid", segment=error.segment)


def within_limit(found: SetErrors, raw: SetErrors, transaction: TransactionSet) -> list[StructuralError]:
    """The errors of a set that pass 1 hands on: all of them, the validator's then the raw checks'
    (SetCheck's order); or, past structural.SET_ERROR_LIMIT (it says why), the first
    LISTED_PAST_LIMIT of each and one more at the ST (structural.TOO_MANY_ERRORS), which reaches
    every claim of the set: what was not kept is not known, so none of them can go out. It names
    the first error and the most frequent: a flood is one fault repeated, and there it shows."""
    total = len(found) + found.dropped + len(raw) + raw.dropped
    limit = structural.SET_ERROR_LIMIT
    if total <= limit:
        return found + raw
    kept = [*found, *raw]
    first = min(kept, key=lambda error: error.segment)
    (seg_id, element, message), times = collections.Counter(
        (error.seg_id, error.element, error.message) for error in kept).most_common(1)[0]
    header = transaction.header
    detail = (f"transaction set '{shown(transaction.control_number)}' holds {total:,} syntax and implementation-"
              f"guide errors, more than the {limit:,} the scrubber judges claim by claim, so no claim of the set "
              f"can go out; the first {LISTED_PAST_LIMIT:,} of each kind are listed, the first at segment "
              f"{first.segment} ({_described(first.seg_id, first.element, first.message)}), and the most frequent "
              f"is {_described(seg_id, element, message)} ({times:,} of the first {len(kept):,})")
    overflow = StructuralError(header.index, "", None, structural.TOO_MANY_ERRORS, "model", detail)
    return [*found[:LISTED_PAST_LIMIT], *raw[:LISTED_PAST_LIMIT], overflow]


# Past the limit, the errors of each kind kept for the claims, the reports and the 999 (every claim
# of the set is rejected by the overflow, whatever its own): a few MB, not the limit's 200 MB.
LISTED_PAST_LIMIT = 1_000


def _too_many_errors(event: TransactionEnd, overflow: StructuralError) -> dict[str, Any]:
    header = event.transaction.header
    return {"code": "guide.too_many_errors", "segment": header.index,
            "message": f"{overflow.message}: correct how the file is made and scrub it again",
            "offset": header.offset, "fixed": False}


def _described(seg_id: str, element: str | None, message: str) -> str:
    subject = shown(element or seg_id)
    return f"{subject}: {shown(message)}" if subject else shown(message)


def raw_problems(segments: list[Segment]) -> list[StructuralError]:
    """Empty segments and bytes outside ASCII: pyx12 cannot take them, so we look first."""
    found = []
    for seg in segments:
        text = seg.text
        if not text.strip():
            found.append(StructuralError(seg.index, "", None, "S003", "raw", "empty segment", seg.offset))
        elif not text.isascii():
            i, char = next((i, c) for i, c in enumerate(text) if ord(c) > 127)
            found.append(StructuralError(seg.index, text[:3], None, "S002", "raw", "byte outside ASCII",
                                         seg.offset + i, ord(char)))
    return found


def _no_claims(event: TransactionEnd, errors: list[StructuralError]) -> dict[str, Any]:
    detail = "; ".join(f"segment {e.segment} {shown(e.seg_id)}: {shown(e.message)}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    header = event.transaction.header
    message = f"transaction set {shown(event.transaction.control_number)} holds no claim (no CLM segment)"
    if errors:
        message += f"; implementation-guide errors: {detail}{more}"
    return {"code": "transaction.no_claims", "message": message, "segment": header.index,
            "offset": header.offset, "fixed": False}


__all__ = ["REJECTED", "Progress", "RunContext", "raw_problems", "scrub_stream"]
