"""Issue 8, "outputs replace what they should not": an output path that names a device, a FIFO or a
link is written through or refused, never replaced; a regular file is still replaced atomically.

Every special file here is made by the test in its own tmp_path (never the system's /dev/null).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import SAMPLES

from scrubber.output.atomic import AtomicFile, OutputRefused

CLEAN = SAMPLES / "clean_837i.837"
NULL_DEVICE = os.makedev(1, 3)  # the numbers of /dev/null
FULL_DEVICE = os.makedev(1, 7)  # /dev/full: every write fails with "no space left on device"

needs_mknod = pytest.mark.skipif(os.geteuid() != 0, reason="only root may make a device node (mknod)")


def scrub(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrubber", "scrub", *args], input=stdin, capture_output=True,
                          timeout=timeout)


def make_device(path: Path, device: int) -> Path:
    os.mknod(path, stat.S_IFCHR | 0o666, device)
    return path


def is_device(path: Path, device: int) -> bool:
    info = os.lstat(path)
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == device


@needs_mknod
def test_report_to_a_null_device_no_longer_replaces_the_device(tmp_path):
    null = make_device(tmp_path / "null", NULL_DEVICE)
    done = scrub("-", "--report", str(null), stdin=CLEAN.read_bytes())
    assert done.returncode == 0, done.stderr
    assert done.stdout == CLEAN.read_bytes()  # the corrected file, on standard output
    assert is_device(null, NULL_DEVICE)  # still the device, not a regular file of mode 0600
    assert os.listdir(tmp_path) == ["null"]  # no temporary file was made beside it


@needs_mknod
def test_outputs_into_a_device_in_the_out_folder_are_written_through(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    make_device(out / "clean_837i.report.html", NULL_DEVICE)
    done = scrub(str(CLEAN), "--out", str(out), "--outputs", "json,html")
    assert done.returncode == 0, done.stderr
    assert is_device(out / "clean_837i.report.html", NULL_DEVICE)
    assert sorted(os.listdir(out)) == ["clean_837i.report.html", "clean_837i.report.json"]


@needs_mknod
def test_a_device_that_refuses_writes_fails_that_input_only_and_exits_2(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    make_device(out / "clean_837i.report.json", FULL_DEVICE)
    done = scrub(str(CLEAN), str(SAMPLES / "clean_837p.837"), "--out", str(out), "--outputs", "json,corrected")
    assert done.returncode == 2
    assert b"clean_837i.837: cannot write its outputs: No space left on device" in done.stderr
    assert b"Traceback" not in done.stderr
    # Nothing of the failed input under a final name; the next input was scrubbed.
    assert sorted(os.listdir(out)) == ["clean_837i.report.json", "clean_837p.corrected.837", "clean_837p.report.json"]
    assert is_device(out / "clean_837i.report.json", FULL_DEVICE)


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as fifo:
            into.append(fifo.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_report_into_a_fifo_is_streamed_to_its_reader_whole(tmp_path, report_schema):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = _read_fifo(fifo, received)
    done = scrub("-", "--report", str(fifo), stdin=CLEAN.read_bytes())
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    report_schema.validate(json.loads(received[0]))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_fifo_output_of_an_input_that_cannot_be_scrubbed_gets_an_end_of_file_not_a_part(tmp_path):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = _read_fifo(fifo, received)
    done = scrub("-", "--report", str(fifo), stdin=CLEAN.read_bytes()[:-40])  # cut short: refused
    reader.join(timeout=30)
    assert done.returncode == 3
    assert received == [b""]  # the reader is not left waiting, and sees nothing of a discarded report
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_report_through_a_symlink_is_refused_and_the_link_kept(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("keep me")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    done = scrub("-", "--report", str(link), stdin=CLEAN.read_bytes())
    assert done.returncode == 2
    assert b"is a symbolic link" in done.stderr and b"Traceback" not in done.stderr
    assert done.stdout == b""  # refused before anything was scrubbed
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["real.json", "report.json"]


def test_a_symlink_at_an_output_name_in_the_out_folder_is_refused_dangling_or_not(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clean_837i.report.csv").symlink_to(tmp_path / "nowhere.csv")
    done = scrub(str(CLEAN), "--out", str(out))
    assert done.returncode == 2 and b"clean_837i.report.csv: is a symbolic link" in done.stderr
    assert os.listdir(out) == ["clean_837i.report.csv"]  # nothing else written
    assert (out / "clean_837i.report.csv").is_symlink() and not (tmp_path / "nowhere.csv").exists()


def test_an_existing_regular_output_is_still_replaced_atomically_keeping_its_mode(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = out / "clean_837i.corrected.837"
    old.write_bytes(b"an older corrected file")
    old.chmod(0o640)
    done = scrub(str(CLEAN), "--out", str(out), "--outputs", "corrected")
    assert done.returncode == 0, done.stderr
    assert old.read_bytes() == CLEAN.read_bytes()
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    assert os.listdir(out) == ["clean_837i.corrected.837"]


def test_an_output_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "x.json").mkdir()
    with pytest.raises(OutputRefused, match="is a directory"):
        AtomicFile(tmp_path / "x.json", "w")


def test_a_discarded_output_leaves_a_regular_file_as_it_was(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("before")
    atomic = AtomicFile(path, "w")
    atomic.file.write("half")
    atomic.discard()
    assert path.read_text() == "before" and os.listdir(tmp_path) == ["r.json"]
