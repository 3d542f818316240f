"""The drop-folder watcher: files arrive in inbox/, get scrubbed once, results land in outbox/.

A file goes inbox/ -> work/ (claimed by one atomic rename) -> its outputs staged beside it and
published into outbox/ by one atomic rename of their folder -> the input into archive/YYYYMMDD/.
A file that cannot be scrubbed goes to error/ with a reason file beside it. The journal records
each step before or right after it happens, so after a crash at any point a restart finishes
the job without losing a file or publishing it twice:

- outputs half-written by the crash (a staging folder in work/) are removed;
- a file in work/ is scrubbed again, unless its results are already in outbox/ (then archived);
- where the journal says a file was being moved, the move is checked and finished.

Each file's problem is that file's alone. An entry that is not a regular file (a link, a FIFO, a
device, a socket, a folder) is moved out of the inbox to error/ unopened; a file that cannot be read
goes to error/ at once; a scrub that raises something unexpected is tried once more and, failing
again (counted in the journal), the file goes to error/. A file that changed while it was scrubbed
(a sender still appending) has its outputs discarded and is scrubbed again once it holds still.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import io
import os
import re
import secrets
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from ..errors import InputError
from ..output.by_files import SMALL_FILE, FileJob, FileOutcome
from ..output.files import DEFAULT_OUTPUTS, OutputSet
from ..output.parallel import Workers
from ..output.pipeline import RunContext, scrub_stream
from ..rules.engine import FixMode
from ..rules.ruleset import RuleSet
from ..x12.guide import DEFAULT_VALIDATOR
from .ahead import FilesInFlight, InFlight
from .journal import DONE, DUPLICATE, ERROR, PUBLISHED, Journal, Record
from .log import EventLog, printable
from .memory import out_of_memory_text, release_memory
from .storage import AccessRefused, Entry, FileProblem, Identity, Storage, UnreadableFile

# Names uploaders give files still being written: never taken.
PARTIAL_SUFFIXES = (".part", ".filepart", ".tmp", ".partial", ".crdownload", ".upload", "~")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RETRY_SECONDS = 30.0
# Names the watcher writes must fit NAME_MAX (255 bytes) with what it adds: "<token>__" in work/,
# ".<token>.reason.txt" in error/, and an output's temporary ".<name>.XXXXXXXX.tmp".
NAME_BUDGET = 200
_MESSAGE_CHARS = 80  # of an unexpected exception's message, in reason files and logs
_MOST_FAILURES = 2  # a scrub that failed this often is not tried again: the file goes to error/


class _Changed(Exception):
    """The file changed while it was scrubbed: its outputs are not published."""


class Interrupted(BaseException):
    """A second stop signal: stop now. What was in hand is taken up again at the next start."""


@dataclass(frozen=True)
class Layout:
    """The folder names under the drop root."""

    inbox: str = "inbox"
    work: str = "work"
    outbox: str = "outbox"
    archive: str = "archive"
    error: str = "error"


@dataclass(frozen=True)
class WatchOptions:
    settle: float = 5.0  # seconds a file's size and time must stay the same before it is taken
    stale: float = 600.0  # seconds after which a file that never became a whole interchange goes to error/
    poll: float = 2.0
    once: bool = False
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    mode: FixMode = FixMode.SAFE
    redact: bool = False
    validator: str = DEFAULT_VALIDATOR  # the implementation-guide validator ("compiled" or "pyx12")
    # Worker processes (output/parallel.py), kept from file to file: small files are scrubbed whole
    # in them, a few ahead of the one being finished (ahead.py); a large file's sets or claims too.
    jobs: int = 1
    memory_limit: int | None = None  # bytes of data each of its processes may use (watch/memory.py), for the log


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float  # monotonic time since which size and mtime have not changed


def is_partial_name(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES)


def safe_name(name: str) -> str:
    """A file name for the outbox: no path, no leading dots, nothing a shell or a share dislikes."""
    cleaned = _SAFE.sub("_", PurePosixPath(name).name).lstrip(".")
    return fit_name(cleaned or "input")


def fit_name(name: str, budget: int = NAME_BUDGET) -> str:
    """`name` itself when it fits in `budget` bytes of UTF-8; else its start, cut between
    characters, a digest of the whole name (so two long names stay apart) and its extension."""
    if len(_encoded(name)) <= budget:
        return name
    digest = hashlib.sha256(_encoded(name)).hexdigest()[:12]
    suffix = PurePosixPath(name).suffix
    if len(_encoded(suffix)) > 16:
        suffix = ""
    room = budget - len(_encoded(suffix)) - len(digest) - 1
    head, used = [], 0
    for char in name[: len(name) - len(suffix)]:
        size = len(_encoded(char))
        if used + size > room:
            break
        head.append(char)
        used += size
    return f"{''.join(head)}-{digest}{suffix}"


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # undecodable bytes of a name come back as they were


def failure_text(exc: BaseException) -> str:
    """What went wrong, for a reason file and the log: the exception's type, where it was raised
    and the start of its message; never the traceback, never the input's content."""
    if isinstance(exc, MemoryError):
        return out_of_memory_text()
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {PurePosixPath(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    message = printable(str(exc).split("\n", 1)[0])
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    return f"{type(exc).__name__}{where}: {message}" if message else f"{type(exc).__name__}{where}"


def interchange_state(head: bytes, tail: bytes, size: int) -> str:
    """"complete" (ISA ... IEA), "incomplete" (an X12 start, no end yet) or "not_x12"."""
    if size == 0:
        return "incomplete"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.startswith(b"ISA"[: len(start)]):
        return "not_x12"
    if len(start) < 106:
        return "incomplete"
    element, terminator = start[3:4], start[105:106]
    body = tail.rstrip(b" \t\r\n")
    if terminator not in (b"\r", b"\n"):
        body = body.rstrip(b"\r\n")
    if not body.endswith(terminator):
        return "incomplete"
    last = body[:-1].rsplit(terminator, 1)[-1].lstrip(b" \t\r\n")
    return "complete" if last.startswith(b"IEA" + element) else "incomplete"


class Watcher:
    def __init__(self, storage: Storage, journal: Journal, rules: RuleSet, log: EventLog,
                 scrubber: dict[str, Any], layout: Layout = Layout(), options: WatchOptions = WatchOptions(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.storage = storage
        self.journal = journal
        self.rules = rules
        self.log = log
        self.scrubber = scrubber
        self.layout = layout
        self.options = options
        self.clock = clock
        self.stopping = False
        self.closing = False  # the run is over and the watcher lets go of its workers: signals are ignored
        self.failures = 0  # files left in work/ for an operational problem (outbox not writable...)
        self._wake = threading.Event()
        self._seen: dict[str, _Seen] = {}
        self._retry_at: dict[str, float] = {}
        self._waiting_logged: set[str] = set()
        self._refused_logged: set[str] = set()
        # Files in work/ that changed while they were scrubbed: scrubbed again once they hold still.
        self._changed: dict[str, tuple[_Seen, float]] = {}
        # Started for the first file and kept: a worker costs its start-up once, not per file.
        self.workers = Workers(options.jobs) if options.jobs > 1 else None
        # With workers: the files taken and not finished yet, the small ones sent ahead to a worker.
        self.in_flight = FilesInFlight(self.workers, rules, log) if self.workers is not None else None

    # -- running ------------------------------------------------------------------------------

    def run(self) -> int:
        """Watch until stopped (or, with `once`, process what is there); returns an exit code."""
        restore = self._install_signals()
        try:
            try:
                self.prepare()
            except OSError as exc:
                self.log.event("cannot start", root=self.storage.describe(),
                               problem=f"{type(exc).__name__}: {exc}")
                return 2
            if self.options.once:
                self._guarded(self.scan)
                self._sleep(self.options.settle)
                self._guarded(self.cycle)
                while self._changed and not self.stopping:  # appended to while scrubbed: wait for it
                    self._sleep(self.options.poll)
                    self._guarded(self._resume_work)
            else:
                while not self.stopping:
                    self._guarded(self.cycle)
                    self._sleep(self.options.poll)
        except Interrupted:
            self.log.event("stopped", how="at once, on a second signal; work in hand resumes at the next start")
            return 130
        except AccessRefused as exc:
            self.log.event("cannot continue", root=self.storage.describe(), problem=str(exc))
            return 2
        finally:
            # A signal from here on changes nothing: the exit code is decided, and the workers are
            # being let go (a second signal that landed in the pool's shutdown escaped as a traceback).
            self.closing = True
            if self.in_flight is not None:
                self.in_flight.clear()  # stopped at once: what was taken stays in work/ for the next start
            if self.workers is not None:
                self.workers.abandon()  # idle between files, or stopped at once: nothing to wait for
            restore()
        self.log.event("stopped", **self.journal.counts())
        return 2 if self.failures else 0

    def _guarded(self, step: Callable[[], object]) -> None:
        """One look at the folders; if they cannot be reached (a server down, a disk gone), say so
        and try again at the next poll."""
        try:
            step()
        except OSError as exc:
            self.failures += 1
            self.log.event("retry later", root=self.storage.describe(), problem=f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    def _sleep(self, seconds: float) -> None:
        if not self.stopping:
            self._wake.wait(seconds)

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handle(signum: int, _frame: Any) -> None:
            if self.closing:
                return
            if self.stopping:
                raise Interrupted
            self.log.event("stopping", signal=signal.Signals(signum).name,
                           how="finishing the file in hand; a second signal stops at once")
            self.stop()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return lambda: [signal.signal(s, h) for s, h in previous.items()]  # type: ignore[func-returns-value]

    # -- start-up: finish what a crash left ---------------------------------------------------------

    def prepare(self) -> None:
        layout = self.layout
        for folder in (layout.inbox, layout.work, layout.outbox, layout.archive, layout.error):
            self.storage.makedirs(folder)
        limit = self.options.memory_limit
        self.log.event("started", root=self.storage.describe(), journal=str(self.journal.path),
                       memory_limit=f"{limit >> 20} MiB per process" if limit else "none")
        for entry in self.storage.list(layout.work):
            if entry.is_dir and entry.name.endswith(".out"):
                self.storage.remove_tree(f"{layout.work}/{entry.name}")
                self.log.event("removed", what="half-written outputs of an interrupted scrub", folder=entry.name)
        for record in self.journal.unfinished():
            if not self.storage.exists(self._work_path(record.token, record.name)):
                self._settle_move(record)
        self._resume_work()

    def _resume_work(self) -> None:
        """Files in work/: left by a crash, by an earlier attempt that could not finish, or changed
        while they were scrubbed."""
        now = self.clock()
        entries = self.storage.list(self.layout.work)
        present = {entry.name.split("__", 1)[0] for entry in entries}
        taken = {item.token for item in self.in_flight} if self.in_flight is not None else set()
        for token in set(self._changed) - present:  # taken out of work/ by hand: nothing to wait for
            del self._changed[token]
        for entry in entries:
            if "__" not in entry.name:
                continue  # a staging folder (<token>.out) or something the watcher did not put there
            token, stored = entry.name.split("__", 1)
            if self._retry_at.get(token, 0) > now or self.stopping or token in taken:
                continue
            record = self.journal.get(token)
            name = record.name if record else stored  # the name as it arrived, however long
            fault = None
            if token in self._changed:
                fault = self._held_still(token, entry)
                if fault is False:
                    continue
                del self._changed[token]
            if record is None:
                self.journal.claimed(token, name, entry.size)
            failures = self.journal.failures(token)
            if failures >= _MOST_FAILURES and fault is None:  # a crash came between counting and moving
                fault = f"the scrub failed {failures} times: {record.detail if record else 'unknown'}"
            self.log.event("resumed", file=name, token=token)
            self._handle(token, name, fault or None)
        self._finish_in_flight()

    def _held_still(self, token: str, entry: Entry) -> str | bool | None:
        """For a file that changed while scrubbed: False while it is still changing, a fault once
        it never became whole again within the stale time, else None (scrub it again)."""
        seen, first = self._changed[token]
        now = self.clock()
        if (seen.size, seen.mtime) != (entry.size, entry.mtime):
            seen = _Seen(entry.size, entry.mtime, now)
            self._changed[token] = (seen, first)
        if now - first >= self.options.stale:
            return f"it kept changing for {self.options.stale:g} s after it was taken: the upload never completed"
        if now - seen.since < self.options.settle:
            return False
        path = f"{self.layout.work}/{entry.name}"
        try:
            state = interchange_state(self.storage.read_range(path, 0, 256),
                                      self.storage.read_range(path, max(entry.size - 512, 0), 512), entry.size)
        except FileProblem:
            return None  # process() finds the problem again and says it
        return None if state != "incomplete" else False

    def _settle_move(self, record: Record) -> None:
        """The input of an unfinished record is no longer in work/: see where the move got to."""
        if record.place and self.storage.exists(record.place):
            state = DONE if record.state == PUBLISHED else ERROR
            self.journal.update(record.token, state=state)
            self.log.event("recovered", file=record.name, token=record.token, state=state, place=record.place)
        else:
            self.journal.update(record.token, state=ERROR, detail="the input left work/ outside the watcher")
            self.log.event("lost", file=record.name, token=record.token,
                           detail="not in work/ and not where the journal says it went")

    # -- one pass over the inbox ---------------------------------------------------------------

    def scan(self) -> list[tuple[Entry, _Seen]]:
        """Look at the inbox; return the files whose size and time have held for the settle time."""
        now = self.clock()
        settled, present = [], set()
        for entry in self.storage.list(self.layout.inbox):
            if is_partial_name(entry.name):
                continue
            present.add(entry.name)
            seen = self._seen.get(entry.name)
            if seen is None or (seen.size, seen.mtime) != (entry.size, entry.mtime):
                self._seen[entry.name] = seen = _Seen(entry.size, entry.mtime, now)
            if now - seen.since >= self.options.settle:
                settled.append((entry, seen))
        for name in set(self._seen) - present:
            del self._seen[name]
            self._waiting_logged.discard(name)
        return settled

    def cycle(self) -> None:
        self._finish_in_flight()  # taken by a pass that the folders cut short
        self._resume_work()
        for entry, seen in sorted(self.scan(), key=lambda pair: (pair[0].mtime, pair[0].name)):
            if self.stopping:
                break
            self._consider(entry, seen)
        self._finish_in_flight()

    def _consider(self, entry: Entry, seen: _Seen) -> None:
        """One settled entry of the inbox: take it, refuse it, or let it wait."""
        if not entry.is_regular:
            self._refuse(entry.name, entry.kind)
            return
        path = f"{self.layout.inbox}/{entry.name}"
        try:
            state = interchange_state(self.storage.read_range(path, 0, 256),
                                      self.storage.read_range(path, max(entry.size - 512, 0), 512), entry.size)
        except FileNotFoundError:
            return
        except UnreadableFile as exc:
            # A rename needs no read permission: the file goes to error/ with the reason.
            self.take(entry, seen, fault=str(exc))
            return
        except FileProblem as exc:  # swapped for a link or a FIFO since it was listed
            self._refuse(entry.name, getattr(exc, "kind", "special file"))
            return
        if state == "complete":
            self.take(entry, seen)
        elif state == "not_x12":
            self.take(entry, seen, fault="not an X12 interchange: it does not start with ISA")
        elif entry.size == 0 and self.options.once:
            self.take(entry, seen, fault=f"an empty file, still empty after {self.options.settle:g} s")
        elif self.clock() - seen.since >= self.options.stale:
            what = "an empty file" if entry.size == 0 else "an interchange that never ended (no IEA)"
            self.take(entry, seen, fault=f"{what}, unchanged for {self.options.stale:g} s: the upload "
                                         "never completed")
        elif entry.name not in self._waiting_logged:
            self._waiting_logged.add(entry.name)
            self.log.event("waiting", file=entry.name, bytes=entry.size,
                           detail="settled but not a whole interchange yet (no IEA at the end)")

    # -- one file ----------------------------------------------------------------------------------

    def take(self, entry: Entry, seen: _Seen, fault: str | None = None) -> None:
        token = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        try:
            self.storage.rename(f"{self.layout.inbox}/{entry.name}", self._work_path(token, entry.name))
        except FileNotFoundError:
            return  # gone meanwhile: another watcher, or the sender took it back
        except OSError as exc:
            # This file cannot be moved (the others may be): say so once, try again at the next pass.
            self.failures += 1
            if entry.name not in self._refused_logged:
                self._refused_logged.add(entry.name)
                self.log.event("retry later", file=entry.name, problem=f"{type(exc).__name__}: {exc.strerror or exc}",
                               state=f"left in {self.layout.inbox}/")
            return
        self.journal.claimed(token, entry.name, entry.size)
        self._seen.pop(entry.name, None)
        self.log.event("taken", file=entry.name, token=token, bytes=entry.size,
                       settled_for=round(self.clock() - seen.since, 2))
        self._handle(token, entry.name, fault)

    def _refuse(self, name: str, kind: str) -> None:
        """Move an inbox entry that is not a regular file to error/ as it is: renamed, never opened,
        never followed (a link stays a link, a folder keeps what it holds)."""
        reason = (f"a {kind}, not a regular file: the watcher takes only regular files, never follows a link "
                  "and never opens a special file; put the claim file itself in the inbox")
        token = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        place = self._free(self.layout.error, name, token)
        try:
            self.storage.rename(f"{self.layout.inbox}/{name}", place)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.failures += 1
            if name not in self._refused_logged:  # logged once, not at every pass
                self._refused_logged.add(name)
                self.log.event("retry later", file=name, kind=kind, reason=reason,
                               problem=f"cannot move it to {self.layout.error}/: {type(exc).__name__}: "
                                       f"{exc.strerror or exc}")
            return
        self._seen.pop(name, None)
        self.journal.claimed(token, name, None)
        self.journal.update(token, state=ERROR, place=place, detail=reason)
        self.storage.write_text(f"{place}.reason.txt", f"{printable(name)}: {reason}\n")
        self.log.event("error", file=name, token=token, place=place, reason=reason)

    # -- files in flight (--jobs > 1) ------------------------------------------------------------------

    def _handle(self, token: str, name: str, fault: str | None = None) -> None:
        """A file just taken (or resumed) in work/: processed now with one job; with workers, sent
        ahead to one if it is small, and the oldest files taken finished while too many wait."""
        if self.in_flight is None:
            self._process_safely(token, name, fault)
            return
        item = InFlight(token, name, fault)
        self._hand_out(item)
        self.in_flight.add(item)
        while len(self.in_flight) > self.in_flight.window:
            self._finish_oldest()

    def _finish_in_flight(self) -> None:
        """Finish every file taken, in the order taken. Also after a stop signal: what was taken
        is finished (a second signal stops at once; work/ then keeps them for the next start)."""
        while self.in_flight:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        assert self.in_flight is not None
        item = self.in_flight.oldest()
        self._process_safely(item.token, item.name, item.fault, item)

    def _hand_out(self, item: InFlight) -> None:
        """Read a small file taken into work/ and send its bytes to a worker. Anything unusual
        (a file gone, swapped, unreadable, large, published before a crash, a duplicate of a
        file in flight or done) leaves it to process(), which deals with it as with one job."""
        assert self.in_flight is not None
        if item.fault is not None:
            return
        path = self._work_path(item.token, item.name)
        try:
            if self.storage.exists(f"{self.layout.outbox}/{safe_name(item.name)}.{item.token}"):
                return
            before = self.storage.identify(path)
            if before[0] > SMALL_FILE:
                return  # scrubbed by its sets (or its claims checked) in the workers, in its turn
            stream, temporary = self.storage.fetch(path)
            try:
                data = stream.read(SMALL_FILE + 1)
            finally:
                stream.close()
                if temporary:
                    os.unlink(stream.name)
        except AccessRefused:
            raise
        except Exception:  # process() meets the same problem and says what it is
            return
        if len(data) > SMALL_FILE:
            return
        digest = hashlib.sha256(data).hexdigest()
        self.journal.update(item.token, sha256=digest)
        item.data, item.before, item.digest = data, before, digest
        if digest in self.in_flight.digests() or self.journal.scrubbed_before(digest, item.token):
            return  # a duplicate is never scrubbed: process() says so once its twin is done
        self.in_flight.send(item, FileJob(printable(item.name), data, self.options.outputs, self.scrubber,
                                          self.options.redact, self.options.mode, dt.date.today(),
                                          self.options.validator))

    # -- one file, to its end --------------------------------------------------------------------------

    def _process_safely(self, token: str, name: str, fault: str | None = None, ahead: InFlight | None = None) -> None:
        """Process one file; whatever goes wrong with it stays with it."""
        for _attempt in range(_MOST_FAILURES):
            problem, out_of_memory = None, False
            try:
                self.process(token, name, fault, ahead)
                return
            except _Changed:
                self._unstage_remote(token)
                return
            except AccessRefused:
                raise
            except FileProblem as exc:
                self._unstage_remote(token)
                fault = str(exc)
            except OSError as exc:
                self._unstage_remote(token)
                if exc.errno == errno.ENOMEM:  # (a file or a process the scrub could not make: its memory)
                    problem, out_of_memory = out_of_memory_text(), True
                else:
                    # Operational (outbox not writable, disk full, connection lost): the input stays in
                    # work/ and is tried again later; nothing half-done is left in the outbox.
                    self._retry_later(token, name, exc)
                    return
            except Exception as exc:  # a bug, in a renderer or anywhere: this file's, not the watcher's
                self._unstage_remote(token)
                problem = failure_text(exc)
                out_of_memory = isinstance(exc, MemoryError)
            if problem is not None:
                if out_of_memory:
                    release_memory()  # (here: the exception, whose traceback holds what the scrub built, is gone)
                failures = self.journal.failed(token, problem)
                if failures < _MOST_FAILURES:
                    self.log.event("failed", file=name, token=token, problem=problem, failures=failures,
                                   next="trying once more")
                    ahead = None  # tried again as with one job: read again, scrubbed here
                    continue
                fault = f"the scrub failed {failures} times: {problem}"
            # A fault found on the way: the file goes to error/ (not scrubbed again).
            try:
                self.process(token, name, fault)
            except OSError as exc:
                self._retry_later(token, name, exc)
            return

    def _retry_later(self, token: str, name: str, exc: OSError) -> None:
        self.failures += 1
        self._retry_at[token] = self.clock() + _RETRY_SECONDS
        self.log.event("retry later", file=name, token=token, problem=f"{type(exc).__name__}: {exc}",
                       state=f"left in {self.layout.work}/")

    def _unstage_remote(self, token: str) -> None:
        with contextlib.suppress(OSError):  # else removed at the next start (a staging folder is never published)
            self.storage.remove_tree(self._stage_path(token))

    def process(self, token: str, name: str, fault: str | None = None, ahead: InFlight | None = None) -> None:
        """Take one file in work/ to its end. `ahead`: its bytes, read when it was taken, and
        their scrub in a worker (--jobs > 1), used in place of reading and scrubbing it here."""
        result = f"{safe_name(name)}.{token}"
        if self.storage.exists(f"{self.layout.outbox}/{result}"):
            # Published before a crash: only the archiving was left to do.
            self.journal.update(token, state=PUBLISHED, result=result)
            self._archive(token, name)
            return
        if fault is not None:
            self._reject(token, name, fault)
            return
        work_path = self._work_path(token, name)
        if ahead is not None and ahead.data is not None and ahead.before is not None:
            before, digest = ahead.before, ahead.digest
            stream, temporary = io.BytesIO(ahead.data), False
        else:
            # What the file is before it is read; checked again before its results are published.
            before, digest = self.storage.identify(work_path), None
            stream, temporary = self.storage.fetch(work_path)
        try:
            if digest is None:
                digest = _sha256(stream)
                self.journal.update(token, sha256=digest)
            earlier = self.journal.scrubbed_before(digest, token)
            if earlier is not None:
                self._duplicate(token, name, earlier)
                return
            stream.seek(0)
            done = self.in_flight.outcome(ahead) if self.in_flight is not None and ahead is not None else None
            published = self._scrub(token, name, stream, result, before, done)
        finally:
            stream.close()
            if temporary:
                os.unlink(stream.name)
        if published:
            self._archive(token, name, scrubbed=before)

    def _scrub(self, token: str, name: str, stream: BinaryIO, result: str, before: Identity,
               done: FileOutcome | None = None) -> bool:
        """Scrub and publish the results (or publish those a worker made of the same bytes:
        `done`); False when the file went to error/ instead."""
        stage_path = self._stage_path(token)
        staged = self.storage.stage(stage_path)
        stem = PurePosixPath(safe_name(name))
        # The reports name the input as it arrived, its control characters escaped (a sender's name
        # must not drive a terminal or break an XML renderer).
        files = OutputSet(staged, stem.stem, stem.suffix, self.options.outputs, printable(name), self.scrubber,
                          self.options.redact, renderers=done is None)
        run = RunContext.new(workers=self.workers)  # in watch mode the checks across claims look within one file
        try:
            if done is not None:
                for kind, (rendered, claims) in done.outputs.items():
                    files.write_rendered(kind, rendered, claims)
                summary = done.summary
            else:
                summary = scrub_stream(stream, self.rules, list(files.sinks.values()), self.options.mode, run=run,
                                       validator=self.options.validator)
        except InputError as exc:
            files.discard()
            self._unstage(staged, stage_path)
            self._reject(token, name, f"cannot scrub: {exc}")
            return False
        except BaseException:
            files.discard()
            self._unstage(staged, stage_path)
            raise
        finally:
            run.close()
        written = files.commit()
        self._unless_changed(token, name, before, staged, stage_path)
        self.storage.publish(staged, stage_path, f"{self.layout.outbox}/{result}")
        counts = f"{summary.claims} claims: {summary.accepted} accepted, {summary.corrected} corrected, " \
                 f"{summary.rejected} rejected"
        self.journal.update(token, state=PUBLISHED, result=result, detail=counts)
        self.log.event("published", file=name, token=token, outbox=f"{self.layout.outbox}/{result}",
                       outputs=",".join(written), claims=summary.claims, accepted=summary.accepted,
                       corrected=summary.corrected, rejected=summary.rejected)
        return True

    def _unless_changed(self, token: str, name: str, before: Identity, staged: os.PathLike[str],
                        stage_path: str) -> None:
        """Publish only what covers the whole file: a sender still appending (to the inode the
        claim renamed) would otherwise have the rest archived unscrubbed."""
        try:
            after = self.storage.identify(self._work_path(token, name))
        except BaseException:
            self._unstage(staged, stage_path)
            raise
        if after == before:
            return
        self._unstage(staged, stage_path)
        now = self.clock()
        self._changed[token] = (_Seen(after[0], -1.0, now), now)
        self.log.event("changed", file=name, token=token, bytes_before=before[0], bytes_now=after[0],
                       detail="changed while it was scrubbed: outputs discarded; scrubbed again once it holds still")
        raise _Changed

    def _archive(self, token: str, name: str, scrubbed: Identity | None = None) -> None:
        folder = f"{self.layout.archive}/{dt.datetime.now(dt.UTC):%Y%m%d}"
        self.storage.makedirs(folder)
        place = self._free(folder, name, token)
        self.journal.update(token, place=place)  # before the move: a crash in between is found again
        self.storage.rename(self._work_path(token, name), place)
        self.journal.update(token, state=DONE)
        if scrubbed is not None and self._changed_since(place, scrubbed):
            self._archived_changed(token, name, place)
            return
        self.log.event("archived", file=name, token=token, place=place)

    def _changed_since(self, path: str, scrubbed: Identity) -> bool:
        """Whether the file at `path` (just renamed) differs from the one scrubbed: size, mtime and
        inode, not the change time, which the rename itself moves on."""
        try:
            return self.storage.identify(path)[:3] != scrubbed[:3]
        except FileProblem:
            return True

    def _archived_changed(self, token: str, name: str, place: str) -> None:
        """Appended to in the moment between the last check and the archiving: its results are
        out, but the archive would hold bytes they do not cover. Say so where an operator looks,
        rather than archive them silently."""
        reason = ("changed after its results were published (the sender was still writing): the outbox "
                  "holds the results of the file as it was before; what was added was not scrubbed. "
                  "Send the missing claims again")
        target = self._free(self.layout.error, name, token)
        self.storage.write_text(f"{target}.reason.txt", f"{printable(name)}: {reason}\n")
        self.storage.rename(place, target)
        self.journal.update(token, state=ERROR, place=target, detail=reason)
        self.log.event("error", file=name, token=token, place=target, reason=reason)

    def _reject(self, token: str, name: str, reason: str) -> None:
        place = self._free(self.layout.error, name, token)
        self.storage.write_text(f"{place}.reason.txt", f"{printable(name)}: {reason}\n")
        self.journal.update(token, place=place, detail=reason)
        self.storage.rename(self._work_path(token, name), place)
        self.journal.update(token, state=ERROR)
        self.log.event("error", file=name, token=token, place=place, reason=reason)

    def _duplicate(self, token: str, name: str, earlier: Record) -> None:
        place = self._free(self.layout.error, name, token)
        reason = (f"duplicate: the same content as {earlier.name!r}, taken {earlier.claimed_at}, whose results "
                  f"are in {self.layout.outbox}/{earlier.result}; not scrubbed again")
        self.storage.write_text(f"{place}.reason.txt", f"{printable(name)}: {printable(reason)}\n")
        self.journal.update(token, place=place, detail=reason)
        self.storage.rename(self._work_path(token, name), place)
        self.journal.update(token, state=DUPLICATE)
        self.log.event("duplicate", file=name, token=token, place=place, same_as=earlier.token)

    def _unstage(self, staged: os.PathLike[str], stage_path: str) -> None:
        shutil.rmtree(staged, ignore_errors=True)  # the local folder (for a remote root, a copy)
        self.storage.remove_tree(stage_path)

    # -- names -----------------------------------------------------------------------------------
    # A name as it arrived is kept in the journal and the log; the names written in work/, error/
    # and archive/ are shortened to fit (see fit_name), so a 255-byte name blocks nothing.

    def _work_path(self, token: str, name: str) -> str:
        return f"{self.layout.work}/{token}__{fit_name(name)}"

    def _stage_path(self, token: str) -> str:
        return f"{self.layout.work}/{token}.out"

    def _free(self, folder: str, name: str, token: str) -> str:
        """A name in `folder` that nothing holds yet: the file's own, or with the token added."""
        plain = f"{folder}/{fit_name(name)}"
        return plain if not self.storage.exists(plain) else f"{plain}.{token}"


def _sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()
