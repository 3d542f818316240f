"""Scrub small input files whole in the worker processes, ahead of the file the run is at.

A run of many small files (a clearinghouse's batch, a day's drop folder) gets nothing from scrubbing
by transaction set (output/by_sets.py): a file under a MiB, or of one set, is scrubbed in the main
process. With `--jobs` > 1 and several inputs, the main process hands such files, whole, to the
workers, a few ahead of the one it is at:

1. a worker scrubs the file's bytes (those the main process read and sent: what it finds is about
   them, whatever happens to the file since) into outputs in memory, against a history of that file
   alone, and says which patients' earlier doses its checks asked for;
2. the main process takes the files in input order. If none of those patients has doses in the
   run's history (the claims of earlier files), the file's own history was the whole truth: its
   outputs are exact, and are written as they are, and its doses recorded. Otherwise, or if the
   worker could not scrub it (a file-level error, a bug, a worker that died), the file is scrubbed
   again here from the same bytes, as with one job, and says what is wrong in the usual way.

So every output and every summary is that of one job. A worker's outputs are bytes in memory: an
interrupted run leaves no temporary file of theirs behind.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rules.engine import FixMode
from ..rules.history import LocalHistory, PartHistory
from .files import KINDS, make_sink
from .parallel import Workers
from .pipeline import RunContext, scrub_stream
from .sink import FragmentSink, Sink
from .summary import Summary

# A file up to this size goes to a worker whole; a larger one is scrubbed by its sets (or its claims
# checked in the workers). It bounds what the main process holds for a file in flight: its bytes and
# its outputs (a few times its size).
SMALL_FILE = 2 << 20
# Files handed out ahead of the one being written, per worker: enough to keep every worker busy
# while the main process writes outputs.
AHEAD = 2


@dataclass
class FileJob:
    """What a worker needs to scrub one input file whole."""

    name: str  # the input's name, as the reports print it
    data: bytes
    kinds: tuple[str, ...]  # the outputs to render
    scrubber: dict[str, Any]  # what the reports say of the scrubber (describe())
    redact: bool
    mode: FixMode
    today: Any
    validator: str
    extra: list[Callable[[], FragmentSink]] = field(default_factory=list)  # e.g. the linter lines


@dataclass
class FileOutcome:
    """A file scrubbed in a worker: its counts, each output's bytes and claims written, the parts of
    the extra sinks, the doses it recorded and the patients whose earlier doses its checks asked for."""

    summary: Summary
    outputs: dict[str, tuple[bytes, int]]
    extra: list[Any]
    history: PartHistory  # what it asked of its own history, and recorded there


class _Rendered:
    """One output rendered into memory, as it would be into its file (output/atomic.py)."""

    def __init__(self, kind: str) -> None:
        self._bytes = io.BytesIO()
        self.stream: Any = self._bytes
        if KINDS[kind].text:
            self.stream = io.TextIOWrapper(self._bytes, encoding="utf-8", newline="" if kind == "csv" else None)

    def value(self) -> bytes:
        self.stream.flush()
        return self._bytes.getvalue()


def _file_task(job: FileJob) -> FileOutcome | None:
    """In a worker: one input, whole, against a history of its own. None if it cannot be scrubbed:
    the main process scrubs it again, and says why."""
    from . import parallel

    rules = parallel._worker_rules
    assert rules is not None
    rendered = {kind: _Rendered(kind) for kind in job.kinds}
    sinks: list[Sink] = [make_sink(kind, r.stream, job.name, job.scrubber, job.redact) for kind, r in rendered.items()]
    extra = [make() for make in job.extra]
    history = LocalHistory()
    try:
        summary = scrub_stream(io.BytesIO(job.data), rules, [*sinks, *extra], job.mode, None,
                               RunContext(history, job.today), validator=job.validator)
        outputs = {kind: (r.value(), getattr(sink, "claims_written", 0))
                   for (kind, r), sink in zip(rendered.items(), sinks, strict=True)}
    except Exception:
        return None
    finally:
        history.close()
    return FileOutcome(summary, outputs, [part.take() for part in extra], history.part())


def send_file(pool: ProcessPoolExecutor, job: FileJob) -> Future[FileOutcome | None]:
    """Hand one file to a worker of `pool`: its future gives what the worker made of it, or None
    (it could not be scrubbed there: scrub `job.data` in the main process)."""
    return pool.submit(_file_task, job)


def small_file(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file small enough to go to a worker whole, else None
    (it is scrubbed the usual way, which also says what stops it being read)."""
    try:
        # Not blocking: a FIFO (read when its turn comes, as a stream) must not stop the run here.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as source:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > SMALL_FILE:
                return None
            data = source.read(SMALL_FILE + 1)
        except OSError:
            return None
    return data if len(data) <= SMALL_FILE else None


class FilesAhead:
    """The small inputs of a run, scrubbed whole in `workers` ahead of the one being written.
    `job_for(index, data)` makes a file's FileJob; `take(index)` gives what its worker made, and
    whether it is exact against the run's history (else None: scrub it here, from `data`)."""

    def __init__(self, workers: Workers, rules: Any, paths: list[Path], run: RunContext,
                 job_for: Callable[[int, bytes], FileJob]) -> None:
        self._workers = workers
        self._rules = rules
        self._paths = paths
        self._run = run
        self._job_for = job_for
        self._next = 0
        self._in_flight: dict[int, tuple[bytes, Future[FileOutcome | None] | None]] = {}
        self._broken = False

    def _hand_out(self, until: int) -> None:
        while self._next < min(until, len(self._paths)):
            index = self._next
            self._next += 1
            data = small_file(self._paths[index])
            if data is None:
                continue
            future = None
            if not self._broken:
                try:
                    future = send_file(self._workers.pool_for(self._rules), self._job_for(index, data))
                except RuntimeError:  # the pool broke since the last file
                    self._stop()
            self._in_flight[index] = (data, future)

    def _stop(self) -> None:
        self._broken = True
        self._workers.abandon()

    def take(self, index: int) -> tuple[bytes | None, FileOutcome | None]:
        """The bytes sent for input `index` (None if it was not sent: scrub the file itself), and its
        outcome if it is exact (None: scrub those bytes here). Hands out the files ahead first."""
        self._hand_out(index + 1 + max(1, self._workers.jobs) * AHEAD)
        data, future = self._in_flight.pop(index, (None, None))
        if future is None:
            return data, None
        try:
            outcome = self._workers.result(future)
        except Exception:  # a worker died, or the file could not be sent
            self._stop()
            return data, None
        if outcome is None or not self._run.history.take_part(outcome.history):
            return data, None
        return data, outcome

    def abandon(self) -> None:
        """The run stops: the files in flight are of no use."""
        if any(f is not None and not f.done() for _, f in self._in_flight.values()):
            self._workers.abandon()
        self._in_flight.clear()
