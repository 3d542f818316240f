"""Check claims in worker processes, ahead of the run, and hand them back in input order.

The parent reads the input as with one job (the claim model, the HL loops and the structural
errors that reach each claim stay in the parent, where the writers need them). Each claim is
handed, in batches, to a worker that runs every rule that reads only the claim, with its fix loop
(`check_claim_locally`); the parent then takes the results in input order, adds the checks across
claims (U008, U009, U015) against the run's history, records the claim in it and feeds the sinks.
So each claim is held against exactly the claims before it, as with one job, and the outputs are
the same bytes.

Workers are started with "spawn" (safe beside threads, as the watcher's), load the rule set once
(the parent's, pickled: the same data even if the rule files change during the run), and ignore
SIGINT: Ctrl-C reaches the whole process group, and only the parent decides what it stops. A
worker that dies (killed, out of memory) breaks the pool: the parent checks the claims it had not
got back itself, in order, so no claim is lost and the outputs stay the same; the next input gets
a fresh pool.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import datetime as dt
import gc
import logging
import multiprocessing
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from ..model.build import ClaimSegments, HLNode, reread_claim
from ..rules.engine import FixMode, LocalCheck, LocalResult, check_claims_locally
from ..rules.findings import ClaimContext
from ..rules.ruleset import RuleSet
from ..rules.syntax import syntax_findings
from .claim_text import ClaimWork, Loops, Texts, texts_of

# Below this input size the claims are checked in process: starting workers and shipping claims
# to them costs more than it saves (measured: README "Parallel scrubbing").
MIN_PARALLEL_BYTES = 1 << 20
MIN_BYTES_ENV = "SCRUBBER_JOBS_MIN_BYTES"
# Claims per batch: large enough that a batch's pickling and the round trip are small beside its
# checks, small enough that the workers start early and the parent's window stays small.
BATCH = 32
# Batches in flight per worker: enough to keep every worker busy while the parent settles and
# writes; bounds what the parent holds (claims waiting for their results).
AHEAD = 3
# A claim of more segments and structural errors than this is checked in the parent: sending it
# and taking its result back cost the parent more than checking it (a claim of 153,000 unknown
# segments and 306,000 errors: 1.9 s more in the parent, and its copy in a worker, than one job).
# A claim of 50 service lines with their drug segments has some 500.
CHECK_HERE_ABOVE = 5_000

# A wait for a worker's result looks this often whether a worker died, and then gives the pool's
# own thread this long to see it (it does, but in the case Workers.result is for).
_LOOK_EVERY = 0.5
_GRACE = 2.0

_log = logging.getLogger("scrubber")


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as `taskset` or a container's cpuset set it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def one_malloc_arena() -> bool:
    """Ask glibc for one malloc arena in this process. The pool's threads in the main process (one
    sends the work, one reads the results) would each get an arena of their own, whose pages stay:
    a step of some 6 MiB at the start of a large run of one set, the rest of its growth from 10,000
    to 1,000,000 claims (README "Memory against the number of claims"). Made by the CLI, for its own
    process; a library caller with busy threads of its own decides for itself. Returns whether it
    was set (not on another C library)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


def min_parallel_bytes() -> int:
    value = os.environ.get(MIN_BYTES_ENV, "")
    return int(value) if value.isdigit() else MIN_PARALLEL_BYTES


def _start_method() -> str:
    """"fork" where it is safe, "spawn" elsewhere. A forked worker starts in milliseconds, with the
    package and the rule set the parent loaded (a spawned one takes about half a CPU second to
    import them again); but fork copies a process with one thread only: where the parent runs other
    threads (the watcher's, a library caller's), a lock one of them held would stay held for good."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave the objects that exist now out of the cyclic collector's walks until the block ends
    (gc.freeze). A process forked inside inherits them frozen, so its collections never walk (and
    write to) the rule set and the tables it shares with its parent: 1,900 fewer pages copied into
    the two workers of a 10,000-claim run. The main process's collections while it splices skip
    them too (0.03 to 0.06 s of collection at 10,000 claims, 0.01 s frozen). Nested blocks freeze
    what was made since; the heap is thawed when the outermost ends."""
    outermost = not gc.get_freeze_count()
    gc.freeze()  # (again within a block: what was made since joins what is frozen)
    try:
        yield
    finally:
        if outermost:
            gc.unfreeze()


class CheckFailed:
    """A claim whose checks raised (a bug in a rule): the pipeline reports it as unattributed."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind  # the exception's type name, all the report says of it


# --- the worker side ------------------------------------------------------------------------------

_worker_rules: RuleSet | None = None


_PR_SET_PDEATHSIG = 1  # Linux's prctl option (linux/prctl.h)


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies. A parent killed with SIGKILL (kill -9,
    the OOM killer, a watcher's crash) cannot stop its workers, and they would wait on the pool's
    queue for good: each killed watcher left its two idle workers behind. Linux only; elsewhere the
    workers outlive a killed parent as before."""
    if platform.system() != "Linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the kernel was asked
        os._exit(1)


def _start_worker(rules: RuleSet, parent: int | None = None) -> None:
    global _worker_rules
    if parent is not None:
        _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the run, and the workers with it
    # A forked worker inherits the parent's handler (the CLI's raises on SIGTERM): terminate() must end it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_rules = rules
    # Read the code tables now, while the parent validates the input (pass 1 leaves a core idle),
    # rather than at the first claims (a forked worker may have them already).
    _read_tables(rules)


def _read_tables(rules: RuleSet) -> None:
    """Read the rule set's code tables. A table that cannot be read fails the checks of the claims
    that need it, as it does with one job."""
    with contextlib.suppress(Exception):
        rules.hcpcs, rules.ndc_crosswalk, rules.icd10  # noqa: B018


def _ready() -> None:
    """A task that does nothing: submitting one per worker starts them all."""


def check_locally(work: ClaimWork, rules: RuleSet, mode: FixMode, today: dt.date) -> LocalResult | CheckFailed:
    """A claim's checks that read only the claim; a rule that raises makes a CheckFailed."""
    return check_all_locally([work], rules, mode, today)[0]


def check_all_locally(batch: list[ClaimWork], rules: RuleSet, mode: FixMode,
                      today: dt.date) -> list[LocalResult | CheckFailed]:
    """check_locally for each claim of a batch, in order, through engine.check_claims_locally (each
    check over the whole batch in turn). No history: the checks across claims are left to the
    parent, in input order."""
    results: list[LocalResult | CheckFailed | None] = [None] * len(batch)
    checks: list[LocalCheck] = []
    numbers: list[int] = []
    for number, work in enumerate(batch):
        claim = work.claim
        try:
            findings = syntax_findings(work.structural, claim, rules)
            policy = rules.policy_for(claim.payer_class_code, claim.payer_id_code)
            context = ClaimContext(rules, policy, None, today, work.delimiters, work.base_index)  # type: ignore[arg-type]
        except MemoryError:
            raise  # (engine.check_claims_locally says why)
        except Exception as exc:  # a fault in the rules must not take down the file
            results[number] = CheckFailed(type(exc).__name__)
            continue
        checks.append(LocalCheck(claim, ClaimSegments(claim), context, findings or None))
        numbers.append(number)
    for number, outcome in zip(numbers, check_claims_locally(checks, mode), strict=True):
        results[number] = CheckFailed(type(outcome).__name__) if isinstance(outcome, Exception) else outcome
    return results  # type: ignore[return-value]


def _check_batch(batch: list[ClaimWork], mode: FixMode, today: dt.date) -> list[LocalResult | CheckFailed]:
    assert _worker_rules is not None
    out: list[LocalResult | CheckFailed] = []
    for result in check_all_locally(batch, _worker_rules, mode, today):
        if isinstance(result, LocalResult):
            # The parent holds the claim (its HL loops are shared with its neighbours there) and
            # reads a fixed one again from the fixed segments: send back only the findings and fixes.
            result.final = result.claim = result.drug_lines = None  # type: ignore[assignment]
        out.append(result)
    return out


# --- the parent side ------------------------------------------------------------------------------

def _close_result_writer(pool: ProcessPoolExecutor) -> None:
    """Close this process's write end of the pool's result pipe (a private attribute of
    ProcessPoolExecutor: tests/test_jobs.py fails plainly if a Python release renames it)."""
    writer = pool._result_queue._writer  # type: ignore[attr-defined]
    with contextlib.suppress(OSError):
        writer.close()


class Workers:
    """A pool of worker processes, kept across the inputs of a run (and the files a watcher takes)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        self._rules: RuleSet | None = None

    def start(self, rules: RuleSet, share: bool = False) -> None:
        """Start the workers (if they are not running for `rules`), without waiting for them. With
        `share`, read the code tables first if the workers are to be forked: they inherit them."""
        if self._pool is None or self._rules is not rules:
            if share and _start_method() == "fork":
                _read_tables(rules)
            pool = self.pool_for(rules)
            for _ in range(self.jobs):
                pool.submit(_ready)

    def pool_for(self, rules: RuleSet) -> ProcessPoolExecutor:
        if self._pool is not None and self._rules is not rules:
            self.close()
        if self._pool is None:
            method = _start_method()
            pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context(method),
                                       initializer=_start_worker, initargs=(rules, os.getpid()))
            if method == "fork":
                # A forked pool forks all its workers at its first task: fork them now, from a frozen heap.
                with frozen_heap():
                    pool.submit(_ready)
            self._pool, self._rules = pool, rules
        return self._pool

    def current_pool(self) -> ProcessPoolExecutor | None:
        """The pool now running, if any (a caller holding futures of an older one knows it is gone)."""
        return self._pool

    def processes(self) -> list[multiprocessing.process.BaseProcess]:
        """The live worker processes (for tests, and to stop them)."""
        pool = self._pool
        found = getattr(pool, "_processes", None) or {}
        return list(found.values())

    def result(self, future: Future[Any], pool: ProcessPoolExecutor | None = None) -> Any:
        """`future.result()` for a future of `pool` (this one's by default). A worker that dies while
        it writes a result (a file's outputs are large) leaves half a message in the result pipe,
        and the pool's thread waits for the rest forever (CPython 3.11): the future is never done,
        and the run hangs. So the wait looks every half second whether a worker of the pool died;
        if one did and the future is still not done a while later, the pool is abandoned, which
        fails the future as broken (see abandon). Found by a test that kills the workers."""
        pool = pool or self._pool
        dead_since: float | None = None
        while True:
            try:
                return future.result(timeout=_LOOK_EVERY)
            except TimeoutError:
                if future.done():
                    raise  # (the task's own)
            if pool is None or pool is not self._pool:
                return future.result()  # (a pool abandoned already: its futures are done)
            found = getattr(pool, "_processes", None) or {}
            if dead_since is None:
                if any(process.exitcode is not None for process in list(found.values())):
                    dead_since = time.monotonic()
            elif time.monotonic() - dead_since > _GRACE:
                self.abandon()
                return future.result()

    def abandon(self) -> None:
        """Stop the workers now (an interruption, a broken pool): their work in hand is dropped."""
        pool, self._pool, self._rules = self._pool, None, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(1)
        # A worker stopped while it wrote a result (a set's outputs are large) leaves half a message
        # in the result pipe, and the pool's thread waits in recv() for the rest, forever: this
        # process holds the pipe's write end too, so no end of file comes. Closing that end gives
        # it one: the thread then sees the pool broken and ends (CPython 3.11 leaves this case).
        _close_result_writer(pool)
        # Wait for the pool's own thread to see its workers gone and end: left running, it races
        # the interpreter's exit hook over its wake-up pipe (a traceback at exit, CPython 3.11).
        # No future is cancelled: that thread fails every pending one as broken, and in 3.11 it
        # raises (a traceback in the thread) on a future cancelled meanwhile.
        pool.shutdown(wait=True)

    def close(self) -> None:
        pool, self._pool, self._rules = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


Deliver = Callable[[ClaimWork, "LocalResult | CheckFailed"], None]


class _Batch:
    __slots__ = ("future", "items", "results")

    def __init__(self) -> None:
        self.items: list[ClaimWork] = []
        self.future: Future[list[LocalResult | CheckFailed]] | None = None
        self.results: list[LocalResult | CheckFailed] | None = None


class OrderedChecks:
    """One input's claims, checked by the workers, and its events, handed back in input order.

    `claim` queues a claim (what to do with its result: `deliver`); `event` queues anything else
    that must happen after the claims before it (a sink's transaction_end). `finish` drains."""

    def __init__(self, workers: Workers, rules: RuleSet, mode: FixMode, today: dt.date) -> None:
        self._workers = workers
        self._rules = rules
        self._args = (mode, today)
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._open = _Batch()
        self._in_flight: collections.deque[_Batch] = collections.deque()
        self._here = False  # the pool broke during this input: the rest is checked here
        self._chain: list[tuple[HLNode, Texts]] = []  # the loops above the last claim, and their text

    def claim(self, work: ClaimWork, deliver: Deliver) -> None:
        if len(work.claim.segments) + len(work.structural) > CHECK_HERE_ABOVE:
            self._here_in_order(work, deliver)
            return
        work.loops = self._loops_of(work.claim.hl)
        batch = self._open
        self._queue.append((batch, len(batch.items), deliver))
        batch.items.append(work)
        if len(batch.items) >= BATCH:
            self._submit()
            while len(self._in_flight) > self._workers.jobs * AHEAD:
                self._drain_batch()

    def _here_in_order(self, work: ClaimWork, deliver: Deliver) -> None:
        """Check a large claim here, now, as a batch of its own behind those already sent."""
        if self._open.items:
            self._submit()
        batch = _Batch()
        batch.items.append(work)
        batch.results = self._check_here(batch.items)
        self._queue.append((batch, 0, deliver))
        self._in_flight.append(batch)

    def event(self, action: Callable[[], None]) -> None:
        if self._queue:
            self._queue.append((action,))
        else:
            action()

    def finish(self) -> None:
        if self._open.items:
            self._submit()
        while self._queue:
            self._step()

    def abandon(self, interrupted: bool) -> None:
        """The input stops before its end: drop what is in flight (stop the workers on an interruption).
        Batches already sent are left to finish and ignored, not cancelled (see Workers.abandon)."""
        self._in_flight.clear()
        self._queue.clear()
        if interrupted:
            self._workers.abandon()

    def _loops_of(self, node: HLNode | None) -> Loops:
        """The claim's HL loops as text, outermost first; the texts of the loops the previous
        claim was under are reused (`_chain` holds them), so each loop is made once."""
        if node is None:
            return ()
        chain = node.chain()
        known = self._chain
        for depth, each in enumerate(chain):
            if depth < len(known) and known[depth][0] is each:
                continue
            del known[depth:]
            known.append((each, texts_of(each.segments)))
        del known[len(chain):]
        return tuple([texts for _, texts in known])

    def _submit(self) -> None:
        batch, self._open = self._open, _Batch()
        if self._here:
            batch.results = self._check_here(batch.items)
        else:
            try:
                batch.future = self._workers.pool_for(self._rules).submit(_check_batch, batch.items, *self._args)
            except RuntimeError as exc:  # the pool broke (a worker died) since the last batch
                self._broken(exc)
                batch.results = self._check_here(batch.items)
        self._in_flight.append(batch)

    def _drain_batch(self) -> None:
        oldest = self._in_flight[0]
        while self._in_flight and self._in_flight[0] is oldest:
            self._step()

    def _step(self) -> None:
        entry = self._queue.popleft()
        if len(entry) == 1:
            entry[0]()
            return
        batch, index, deliver = entry
        if batch.results is None:
            if batch is self._open:
                self._submit()
            batch.results = self._results_of(batch)
        deliver(batch.items[index], batch.results[index])
        if index == len(batch.items) - 1:
            self._in_flight.popleft()
            batch.items = []

    def _results_of(self, batch: _Batch) -> list[LocalResult | CheckFailed]:
        assert batch.future is not None
        try:
            results = self._workers.result(batch.future)
        except Exception as exc:  # a worker died (or the batch could not be sent)
            self._broken(exc)
            return self._check_here(batch.items)
        for work, result in zip(batch.items, results, strict=True):
            if isinstance(result, LocalResult):
                claim = result.claim = work.claim
                # A claim changes only by its fixes, and the fix loop read it again after the last.
                replacements = result.replacements
                result.final = claim if not replacements else reread_claim(
                    claim, [replacements.get(p, s) for p, s in enumerate(claim.segments, start=claim.first)],
                    work.delimiters)
        return results

    def _broken(self, exc: Exception) -> None:
        if not self._here:  # once: every batch in flight fails with the pool
            _log.warning("scrubber: a worker process stopped (%s); the claims it had not returned are checked "
                         "again in the main process", type(exc).__name__)
        self._here = True
        self._workers.abandon()

    def _check_here(self, items: list[ClaimWork]) -> list[LocalResult | CheckFailed]:
        mode, today = self._args
        return check_all_locally(items, self._rules, mode, today)


__all__ = ["MIN_PARALLEL_BYTES", "CheckFailed", "ClaimWork", "OrderedChecks", "Workers", "usable_cores"]
