"""With `--jobs` > 1, the watcher's small files scrubbed whole in the worker processes, a few ahead
of the file it finishes.

A drop folder's batch is mostly small files (a few hundred claims each), which gain nothing from
being scrubbed by transaction set. So, as `scrubber scrub` does with its inputs (output/by_files.py),
the watcher claims the next ready files into work/ while one is being finished, reads each small
one's bytes and hands them to a worker, which renders every output in memory. The watcher then
finishes the files one after another, in the order it took them, exactly as with one job: the
duplicate check, the outputs written under temporary names and published by one rename, the
journal, the archive, the log. Each file has a history of its own in watch mode (the checks across
claims look within one file), so what a worker made is always exact.

This module only keeps the files in flight and their workers; what the watcher does with a file
stays in watcher.py.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from ..output.by_files import AHEAD, FileJob, FileOutcome, send_file
from ..output.parallel import Workers
from ..rules.ruleset import RuleSet
from .log import EventLog
from .storage import Identity


@dataclass
class InFlight:
    """A file the watcher took (it is in work/) and has not finished yet."""

    token: str
    name: str
    fault: str | None = None  # a reason it goes to error/ unscrubbed, found when it was taken
    data: bytes | None = None  # the bytes read ahead (None: the file is read when its turn comes)
    before: Identity | None = None  # what the file was before those bytes were read
    digest: str | None = None  # their SHA-256
    future: Future[FileOutcome | None] | None = None  # its scrub in a worker, if it was sent
    pool: ProcessPoolExecutor | None = None  # the pool it was sent to


class FilesInFlight:
    """The files taken and not yet finished, oldest first, and their scrubs in `workers`."""

    def __init__(self, workers: Workers, rules: RuleSet, log: EventLog) -> None:
        self._workers = workers
        self._rules = rules
        self._log = log
        self._files: collections.deque[InFlight] = collections.deque()

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[InFlight]:
        return iter(self._files)

    @property
    def window(self) -> int:
        """How many files may wait behind the one being finished: enough to keep every worker busy."""
        return max(1, self._workers.jobs) * AHEAD

    def add(self, item: InFlight) -> None:
        self._files.append(item)

    def oldest(self) -> InFlight:
        return self._files.popleft()

    def clear(self) -> None:
        """Forget the files in flight (the watcher stops at once: they stay in work/ for the next
        start; their scrubs die with the workers)."""
        self._files.clear()

    def digests(self) -> set[str]:
        return {item.digest for item in self._files if item.digest is not None and item.future is not None}

    def send(self, item: InFlight, job: FileJob) -> None:
        """Hand `item`'s bytes to a worker. A pool found broken (a worker died while idle) is
        replaced once; failing that, the file is scrubbed when its turn comes, in this process."""
        for _attempt in range(2):
            pool = self._workers.pool_for(self._rules)
            try:
                item.future, item.pool = send_file(pool, job), pool
                return
            except RuntimeError:  # BrokenProcessPool, or a pool shut down meanwhile
                self._lost(pool, "sending a file")

    def outcome(self, item: InFlight) -> FileOutcome | None:
        """What the worker made of `item`, or None: it was not sent, the worker could not scrub it
        (the watcher then scrubs the same bytes and says what is wrong, as with one job) or died."""
        future, item.future = item.future, None
        if future is None:
            return None
        try:
            return self._workers.result(future, item.pool)
        except Exception:  # the pool broke: a worker was killed, or ran out of memory
            self._lost(item.pool, "scrubbing a file")
            return None

    def _lost(self, pool: ProcessPoolExecutor | None, doing: str) -> None:
        """A pool broke. Stop it, unless it was stopped already (the other files it held fail with
        it, and a new pool, serving later files, must not be stopped for them)."""
        if pool is None or self._workers.current_pool() is not pool:
            return
        self._workers.abandon()
        self._log.event("worker stopped", detail=f"a worker process stopped while {doing}: the files it held "
                                                 "are scrubbed in the watcher's process; new workers start "
                                                 "for the next files")
