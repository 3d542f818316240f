"""The watcher against a hostile sender and a careless operator (issue 8): a file that crashes the
scrub, links, FIFOs, devices and folders in the inbox, unreadable files, 255-byte names, a sender
still appending while the file is scrubbed, forged log lines, a root that cannot be made, signals.

Each test is named after the defect it covers and fails without its fix. The tests that need to
break something inside the watcher (a renderer that raises, an open that is refused, a sender that
appends in the middle of a scrub) run it in this process with a monkeypatch; the others run the real
`scrubber watch` in a subprocess."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_watch import CLEAN_I, DEFECTS_P, drop, files, states, variant, watch

import scrubber.watch.watcher as watcher_module
from scrubber import load_rules
from scrubber.cli.common import describe
from scrubber.watch import EventLog, Journal, Layout, LocalStorage, Watcher, WatchOptions
from scrubber.watch.storage import FIFO, LINK, Entry, NotARegularFile
from scrubber.watch.watcher import NAME_BUDGET, fit_name

RULES = load_rules()
REAL_SCRUB = watcher_module.scrub_stream
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S")


class Log(list):
    """An event log's stream, kept in memory."""

    def write(self, text: str) -> None:
        self.extend(line for line in text.splitlines() if line)

    def flush(self) -> None:
        pass

    def events(self, name: str) -> list[str]:
        return [line for line in self if line.split(" ", 2)[1:2] == [name]]


def run_in_process(root: Path, **options: object) -> tuple[int, Log]:
    """`scrubber watch ROOT --once` in this process (so a test can monkeypatch the watcher)."""
    log = Log()
    journal = Journal(root / ".scrubber-journal.sqlite")
    settings = {"settle": 0.1, "poll": 0.05, "once": True, "outputs": ("corrected", "rejected", "json"),
                **options}
    watcher = Watcher(LocalStorage(root), journal, RULES, EventLog(log), describe(RULES), Layout(),
                      WatchOptions(**settings))  # type: ignore[arg-type]
    try:
        return watcher.run(), log
    finally:
        journal.close()


def age(path: Path, seconds: float) -> None:
    """Make a file look older, so the watcher meets it first (files are taken oldest first)."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def journal_rows(root: Path) -> list[tuple]:
    with sqlite3.connect(root / ".scrubber-journal.sqlite") as db:
        return db.execute("SELECT name, state, failures, detail FROM files ORDER BY name").fetchall()


def outbox_claims(root: Path) -> dict[str, int]:
    """Claims reported per outbox folder."""
    return {report.parent.name: json.loads(report.read_text())["summary"]["claims"]
            for report in (root / "outbox").glob("*/*.report.json")}


# -- 1. one bad file must not stop the watcher ---------------------------------------------------------------

def _scrub_failing_on(marker: bytes, calls: list[str], times: int = 99):
    """A scrub that raises, as the HTML renderer did on a control byte, for inputs holding `marker`
    (the first `times` times), and scrubs the others for real."""
    def scrub(stream, *args, **kwargs):
        data = stream.read()
        stream.seek(0)
        if marker in data and len([c for c in calls if c == "failed"]) < times:
            calls.append("failed")
            raise ValueError("All strings must be XML compatible\nDOE JANE 19700101")  # PHI after the first line
        calls.append("scrubbed")
        return REAL_SCRUB(stream, *args, **kwargs)
    return scrub


def test_one_bad_file_does_not_stop_the_watcher_it_is_quarantined_after_two_failures(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(watcher_module, "scrub_stream", _scrub_failing_on(b"CLM*POISON", calls))
    age(drop(tmp_path, "poison.837", CLEAN_I.replace(b"CLM*", b"CLM*POISON")), 60)
    drop(tmp_path, "good1.837", variant(CLEAN_I, 1))
    drop(tmp_path, "good2.837", variant(DEFECTS_P, 2))
    code, log = run_in_process(tmp_path)
    assert code == 0
    assert calls.count("failed") == 2  # tried once more, then given up
    assert files(tmp_path, "error") == ["poison.837", "poison.837.reason.txt"]
    reason = (tmp_path / "error" / "poison.837.reason.txt").read_text()
    assert "failed 2 times: ValueError at test_watch_hostile.py:" in reason
    assert "All strings must be XML compatible" in reason
    assert "DOE" not in reason and "Traceback" not in reason  # the type and a short message, nothing of the claim
    assert sorted(p.split("/")[1] for p in files(tmp_path, "archive")) == ["good1.837", "good2.837"]
    assert sorted(outbox_claims(tmp_path).values()) == [2, 52]
    assert files(tmp_path, "work") == []
    assert journal_rows(tmp_path)[-1][:3] == ("poison.837", "error", 2)
    assert len(log.events("failed")) == 1 and "DOE" not in "\n".join(log)


def test_a_scrub_that_fails_once_is_tried_again_and_published(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(watcher_module, "scrub_stream", _scrub_failing_on(b"CLM*", calls, times=1))
    drop(tmp_path, "flaky.837", CLEAN_I)
    code, _ = run_in_process(tmp_path)
    assert code == 0 and calls == ["failed", "scrubbed"]
    assert files(tmp_path, "error") == [] and list(outbox_claims(tmp_path).values()) == [2]
    assert journal_rows(tmp_path)[0][:3] == ("flaky.837", "done", 1)


def test_a_failure_counted_before_a_restart_is_not_forgotten(tmp_path, monkeypatch):
    """The file failed once, then the watcher stopped (a crash, a restart): the next failure is its
    second and it goes to error/, instead of being resumed and crashing at every start."""
    token = "20260101T000000-0badf11e"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / f"{token}__poison.837").write_bytes(CLEAN_I.replace(b"CLM*", b"CLM*POISON"))
    journal = Journal(tmp_path / ".scrubber-journal.sqlite")
    journal.claimed(token, "poison.837", len(CLEAN_I))
    journal.failed(token, "ValueError: before the restart")
    journal.close()
    drop(tmp_path, "good.837", variant(CLEAN_I, 7))
    calls: list[str] = []
    monkeypatch.setattr(watcher_module, "scrub_stream", _scrub_failing_on(b"CLM*POISON", calls))
    code, _ = run_in_process(tmp_path)
    assert code == 0 and calls.count("failed") == 1
    assert files(tmp_path, "error") == ["poison.837", "poison.837.reason.txt"]
    assert [p.split("/")[1] for p in files(tmp_path, "archive")] == ["good.837"]


# -- 2. links and other entries that are not regular files ---------------------------------------------------

def test_symlink_in_inbox_is_never_followed(tmp_path):
    secret = tmp_path / "outside" / "patients.837"  # outside the root, patient names included
    secret.parent.mkdir()
    secret.write_bytes(CLEAN_I)
    root = tmp_path / "root"
    drop(root, "good.837", variant(CLEAN_I, 3))
    (root / "inbox" / "link.837").symlink_to(secret)
    done = watch(root)
    assert done.returncode == 0, done.stderr
    assert list(outbox_claims(root)) and all(f.startswith("good.837.") for f in outbox_claims(root))
    moved = root / "error" / "link.837"
    assert moved.is_symlink() and os.readlink(moved) == str(secret)  # the link itself, renamed
    assert "symbolic link, not a regular file" in (root / "error" / "link.837.reason.txt").read_text()
    assert secret.read_bytes() == CLEAN_I and "DOE" not in "".join(p.read_text() for p in root.rglob("*.json"))
    assert done.stderr.count("error file=link.837") == 1


def test_a_dangling_link_is_moved_out_with_one_log_line(tmp_path):
    drop(tmp_path, "good.837", CLEAN_I)
    (tmp_path / "inbox" / "dangling.837").symlink_to(tmp_path / "nowhere.837")
    done = watch(tmp_path)
    assert done.returncode == 0
    assert (tmp_path / "error" / "dangling.837").is_symlink()
    assert done.stderr.count("error file=dangling.837") == 1
    assert os.listdir(tmp_path / "inbox") == []


def test_a_folder_dropped_in_the_inbox_goes_to_error_with_what_it_holds(tmp_path):
    folder = tmp_path / "inbox" / "batch"
    folder.mkdir(parents=True)
    (folder / "inner.837").write_bytes(CLEAN_I)
    done = watch(tmp_path)
    assert done.returncode == 0
    assert (tmp_path / "error" / "batch" / "inner.837").read_bytes() == CLEAN_I  # moved whole, not opened
    assert "a folder, not a regular file" in (tmp_path / "error" / "batch.reason.txt").read_text()
    assert files(tmp_path, "outbox") == [] and os.listdir(tmp_path / "inbox") == []


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # the null device's numbers, in tmp_path
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_in_the_inbox_is_moved_to_error_unopened(tmp_path, kind):
    special = tmp_path / "inbox" / "special.837"
    special.parent.mkdir()
    os.mkfifo(special) if kind == "fifo" else _device(special)
    drop(tmp_path, "good.837", CLEAN_I)
    done = watch(tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    moved = (tmp_path / "error" / "special.837").lstat()
    assert (stat.S_ISFIFO if kind == "fifo" else stat.S_ISCHR)(moved.st_mode)
    assert "not a regular file" in (tmp_path / "error" / "special.837.reason.txt").read_text()
    assert [p.split("/")[1] for p in files(tmp_path, "archive")] == ["good.837"]


def test_a_link_swapped_in_after_listing_is_caught_at_open(tmp_path, monkeypatch):
    """The inbox was listed while `late.837` was a regular file; it became a link before it was
    read. O_NOFOLLOW on the open (not the listing) is what keeps it out."""
    secret = tmp_path / "secret.837"
    secret.write_bytes(CLEAN_I)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "late.837").symlink_to(secret)
    listed = LocalStorage.list

    def stale_listing(self, folder):  # what the listing saw a moment before the swap
        return [Entry(e.name, len(CLEAN_I), e.mtime) if e.kind == LINK else e for e in listed(self, folder)]

    monkeypatch.setattr(LocalStorage, "list", stale_listing)
    code, log = run_in_process(tmp_path)
    assert code == 0 and files(tmp_path, "outbox") == []
    assert (tmp_path / "error" / "late.837").is_symlink()
    assert len(log.events("error")) == 1


def test_the_storage_never_opens_a_link_or_blocks_on_a_fifo(tmp_path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "target").write_bytes(CLEAN_I)
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.mkfifo(tmp_path / "fifo")
    for name, kind in (("link", LINK), ("fifo", FIFO)):
        for read in (lambda n: storage.fetch(n), lambda n: storage.read_range(n, 0, 10), storage.identify):
            with pytest.raises(NotARegularFile) as caught:
                read(name)
            assert caught.value.kind == kind
    assert storage.read_range("target", 0, 3) == b"ISA"


# -- 3. one file must not block the inbox --------------------------------------------------------------------

def test_an_unreadable_file_goes_to_error_and_the_others_are_taken(tmp_path, monkeypatch):
    """open() refused (as for a file of another user, or EIO on a bad disk): root reads mode-000
    files, so the refusal is made by the open the storage calls."""
    age(drop(tmp_path, "locked.837", variant(CLEAN_I, 1)), 60)  # met first: it used to end the pass
    drop(tmp_path, "good.837", variant(CLEAN_I, 2))
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path).endswith("locked.837"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    code, _ = run_in_process(tmp_path)
    assert code == 0
    assert files(tmp_path, "error") == ["locked.837", "locked.837.reason.txt"]
    assert "cannot read" in (tmp_path / "error" / "locked.837.reason.txt").read_text()
    assert "PermissionError" in (tmp_path / "error" / "locked.837.reason.txt").read_text()
    assert [p.split("/")[1] for p in files(tmp_path, "archive")] == ["good.837"]


class _FailingDisk(io.RawIOBase):
    """A file whose every read fails with EIO, as on a bad sector."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return os.lseek(self.fd, offset, whence)

    def readinto(self, buffer) -> int:
        raise OSError(errno.EIO, "Input/output error")

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def test_a_file_whose_reads_fail_goes_to_error_and_the_others_are_taken(tmp_path, monkeypatch):
    """The open succeeds, reading fails (EIO): the file goes to error/, the watcher goes on."""
    age(drop(tmp_path, "bad-sector.837", variant(CLEAN_I, 1)), 60)
    drop(tmp_path, "good.837", variant(CLEAN_I, 2))
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("bad-sector.837"):
            return io.BufferedReader(_FailingDisk(fd))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    code, _ = run_in_process(tmp_path)
    assert code == 0
    assert "Input/output error" in (tmp_path / "error" / "bad-sector.837.reason.txt").read_text()
    assert [p.split("/")[1] for p in files(tmp_path, "archive")] == ["good.837"]


LONG_NAMES = ["x" + "é" * 125 + ".837", "a" * 251 + ".837", "a" * 250 + "b.837"]


def test_a_255_byte_name_is_shortened_and_blocks_nothing(tmp_path):
    assert {len(name.encode()) for name in LONG_NAMES} == {255}
    for n, name in enumerate(LONG_NAMES):
        age(drop(tmp_path, name, variant(CLEAN_I, 10 + n)), 60 - n)
    drop(tmp_path, "short.837", variant(CLEAN_I, 20))
    done = watch(tmp_path)
    assert done.returncode == 0, done.stderr
    archived = [p.split("/")[1] for p in files(tmp_path, "archive")]
    assert len(archived) == 4 and len(set(archived)) == 4 and "short.837" in archived
    assert all(len(name.encode()) <= NAME_BUDGET and name.endswith(".837") for name in archived)
    assert len(outbox_claims(tmp_path)) == 4
    # The name as it arrived is kept in the journal and the log.
    assert sorted(row[0] for row in journal_rows(tmp_path)) == sorted([*LONG_NAMES, "short.837"])
    assert all(f"published file={name}" in done.stderr for name in LONG_NAMES)


def test_fit_name_keeps_names_unique_whole_characters_and_the_extension():
    for name in LONG_NAMES:
        short = fit_name(name)
        assert len(short.encode()) <= NAME_BUDGET and short.endswith(".837")
        short.encode("utf-8")  # no character cut in half (would raise on a lone surrogate)
        assert short.startswith(name[:50])
    assert len({fit_name(name) for name in LONG_NAMES}) == len(LONG_NAMES)
    assert fit_name("claims.837") == "claims.837"
    odd = "\udcff" * 300  # an undecodable byte of a name, as os.listdir gives it
    assert len(fit_name(odd).encode("utf-8", "surrogateescape")) <= NAME_BUDGET


# -- 4. data appended while the file is scrubbed -------------------------------------------------------------

def test_data_appended_during_the_scrub_is_scrubbed_not_archived(tmp_path, monkeypatch):
    """The upload paused after its first interchange (it looked complete); the sender goes on
    appending to the same inode while the watcher scrubs what it read."""
    first, rest = variant(CLEAN_I, 30), variant(DEFECTS_P, 31)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    writer = open(inbox / "upload.837", "ab")  # noqa: SIM115 (the sender's handle, kept open)
    writer.write(first)
    writer.flush()
    calls = []

    def scrub_then_the_sender_appends(stream, *args, **kwargs):
        summary = REAL_SCRUB(stream, *args, **kwargs)
        calls.append(summary.claims)
        if len(calls) == 1:
            writer.write(rest)  # to the inode the claim renamed into work/
            writer.close()
        return summary

    monkeypatch.setattr(watcher_module, "scrub_stream", scrub_then_the_sender_appends)
    code, log = run_in_process(tmp_path, settle=0.2)
    assert code == 0
    assert calls == [2, 54] and len(log.events("changed")) == 1
    assert list(outbox_claims(tmp_path).values()) == [54]  # one result, for the whole file
    [archived] = files(tmp_path, "archive")
    assert (tmp_path / "archive" / archived).read_bytes() == first + rest
    assert states(tmp_path) == {"done": 1}


def test_once_does_not_wait_for_a_changed_file_taken_out_of_work(tmp_path, monkeypatch):
    """--once waits for a file that changed while scrubbed; if an operator moves it out of work/
    meanwhile, there is nothing left to wait for and the run ends."""
    drop(tmp_path, "upload.837", CLEAN_I)

    def scrub_then_the_sender_appends(stream, *args, **kwargs):
        summary = REAL_SCRUB(stream, *args, **kwargs)
        [held] = (tmp_path / "work").glob("*__upload.837")
        with held.open("ab") as sender:
            sender.write(variant(DEFECTS_P, 50))
        return summary

    class OperatorReadingTheLog(Log):
        def write(self, text: str) -> None:
            super().write(text)
            if " changed " in text[:40]:  # the operator takes the file out of work/ by hand
                [held] = (tmp_path / "work").glob("*__upload.837")
                held.rename(tmp_path / "taken-by-hand.837")

    monkeypatch.setattr(watcher_module, "scrub_stream", scrub_then_the_sender_appends)
    log, running = OperatorReadingTheLog(), {}

    def run() -> None:  # SQLite wants the journal used in the thread that opened it
        journal = Journal(tmp_path / ".scrubber-journal.sqlite")
        running["watcher"] = Watcher(LocalStorage(tmp_path), journal, RULES, EventLog(log), describe(RULES),
                                     Layout(), WatchOptions(settle=0.1, poll=0.05, once=True, outputs=("json",)))
        try:
            running["code"] = running["watcher"].run()
        finally:
            journal.close()

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(timeout=30)
    stuck = runner.is_alive()
    if stuck:
        running["watcher"].stop()
        runner.join(timeout=30)
    assert not stuck and running["code"] == 0
    assert len(log.events("changed")) == 1 and files(tmp_path, "outbox") == []


def test_data_appended_after_the_last_check_is_not_archived_silently(tmp_path, monkeypatch):
    """The sender appends in the moment between publishing and archiving: the results cannot be
    taken back, so the file goes to error/ saying what happened instead of into the archive."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    writer = open(inbox / "upload.837", "ab")  # noqa: SIM115 (the sender's handle, kept open)
    writer.write(variant(CLEAN_I, 40))
    writer.flush()
    publish = LocalStorage.publish

    def publish_then_the_sender_appends(self, *args):
        publish(self, *args)
        writer.write(variant(DEFECTS_P, 41))
        writer.close()

    monkeypatch.setattr(LocalStorage, "publish", publish_then_the_sender_appends)
    code, _ = run_in_process(tmp_path)
    assert code == 0 and list(outbox_claims(tmp_path).values()) == [2]
    assert files(tmp_path, "archive") == []
    assert files(tmp_path, "error") == ["upload.837", "upload.837.reason.txt"]
    assert "changed after its results were published" in (tmp_path / "error" / "upload.837.reason.txt").read_text()
    assert states(tmp_path) == {"error": 1}


# -- 5. smaller ---------------------------------------------------------------------------------------------

FORGED = "a\rb\n2026-01-01T00:00:00.000Z published file=forged.837\x1b[31m\u202e.837"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_control_characters_in_file_names_do_not_forge_log_lines(tmp_path, fmt):
    drop(tmp_path, FORGED, CLEAN_I)
    done = watch(tmp_path, "--log-format", fmt)
    assert done.returncode == 0, done.stderr
    assert not {"\r", "\x1b", "\u202e"} & set(done.stderr)
    lines = done.stderr.splitlines()
    if fmt == "text":
        assert all(STAMP.match(line) for line in lines)
        assert sum(" published " in line[:40] for line in lines) == 1  # the real one, none forged
        assert "\\u001b" in done.stderr and "\\r" in done.stderr
    else:
        events = [json.loads(line) for line in lines]
        assert [e["file"] for e in events if e["event"] == "published"] == [FORGED]
    assert [p.split("/")[1] for p in files(tmp_path, "archive")] == [FORGED]  # the file itself keeps its name


def test_a_root_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("a regular file")
    done = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(tmp_path / "file" / "root"), "--once"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot start" in done.stderr and "file/root" in done.stderr


def test_a_journal_that_cannot_be_opened_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("a regular file")
    done = watch(tmp_path / "root", "--journal", str(tmp_path / "file" / "journal.sqlite"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "journal" in done.stderr


def test_once_moves_an_empty_upload_to_error(tmp_path):
    drop(tmp_path, "empty.837", b"")
    done = watch(tmp_path)  # no --stale: an empty file that holds still for --settle is enough
    assert done.returncode == 0
    assert files(tmp_path, "error") == ["empty.837", "empty.837.reason.txt"]
    assert "an empty file" in (tmp_path / "error" / "empty.837.reason.txt").read_text()


def test_without_once_an_empty_upload_waits_for_stale(tmp_path):
    drop(tmp_path, "empty.837", b"")
    process = subprocess.Popen([sys.executable, "-m", "scrubber", "watch", str(tmp_path), "--settle", "0.1",
                                "--poll", "0.1", "--stale", "3"], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert (tmp_path / "inbox" / "empty.837").exists()  # an upload may still be starting
        deadline = time.monotonic() + 30
        while not (tmp_path / "error" / "empty.837").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert "an empty file" in (tmp_path / "error" / "empty.837.reason.txt").read_text()


# -- 6. signals ---------------------------------------------------------------------------------------------

def test_sigterm_stops_the_watcher_with_a_fifo_in_its_inbox(tmp_path):
    """A FIFO used to hold the watcher in open(), where SIGTERM could not reach it."""
    (tmp_path / "inbox").mkdir()
    os.mkfifo(tmp_path / "inbox" / "pipe.837")
    process = subprocess.Popen([sys.executable, "-m", "scrubber", "watch", str(tmp_path), "--settle", "0.2",
                                "--poll", "0.1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "error" / "pipe.837.reason.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and time.monotonic() - sent < 5, err
    assert stat.S_ISFIFO((tmp_path / "error" / "pipe.837").lstat().st_mode)
    assert "stopping signal=SIGTERM" in err



def test_a_signal_after_the_stop_does_not_kill_the_closing_watcher(tmp_path):
    """The second of two quick signals used to arrive after the run had put back the default
    handlers: a clean stop ended as death by SIGINT (-2) instead of a documented exit code."""
    (tmp_path / "inbox").mkdir()
    process = subprocess.Popen([sys.executable, "-m", "scrubber", "watch", str(tmp_path), "--once", "--settle",
                                "0.2"], stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if " stopped" in line[:40]:
                process.send_signal(signal.SIGINT)  # while it closes the journal and exits
                break
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 130) and "Traceback" not in err  # stopped, or stopped at once
