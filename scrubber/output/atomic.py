"""Outputs that appear whole or not at all, and never replace what is not theirs.

What an output path names decides how it is written:

- nothing yet, or a regular file: a temporary file beside it, renamed over it by `commit()` (a file
  it replaces keeps its permission bits);
- a character device (/dev/null, a terminal): written straight into; it holds no file to half-write,
  and a rename would put a regular file in the device's place;
- a FIFO: spooled to an anonymous temporary file and copied into the FIFO whole by `finish()`, so the
  reader never gets part of an output that is discarded;
- a symbolic link, a directory, a block device, a socket: refused (`OutputRefused`). A link is
  neither replaced nor followed: the user names its target if that is what is meant.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO

from ..errors import ScrubberError

NEW, REGULAR, DEVICE, FIFO = "new", "regular", "device", "fifo"


class OutputRefused(ScrubberError):
    """An output path names something the scrubber will not write over (a link, a directory, ...)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path


def output_target(path: Path) -> str:
    """How `path` will be written (NEW, REGULAR, DEVICE or FIFO); raises OutputRefused when it will not."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return NEW
    except NotADirectoryError:
        raise OutputRefused(path, "cannot be created: a part of the path is not a directory") from None
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return REGULAR
    if stat.S_ISCHR(mode):
        return DEVICE
    if stat.S_ISFIFO(mode):
        return FIFO
    if stat.S_ISLNK(mode):
        raise OutputRefused(path, f"is a symbolic link (to {os.readlink(path)}); outputs are never written "
                                  "through links: name the file itself")
    if stat.S_ISDIR(mode):
        raise OutputRefused(path, "is a directory")
    raise OutputRefused(path, "is a block device or a socket, not a place for an output")


def _open_special(path: Path, expected: str, flags: int = 0) -> int:
    """Open a device or FIFO for writing without following a link that replaced it since it was checked."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | flags)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISCHR(mode) if expected == DEVICE else stat.S_ISFIFO(mode)):
        os.close(fd)
        raise OutputRefused(path, "changed while it was being written")
    return fd


class AtomicFile:
    """One output: write to `file`, then `finish()` (flushed to disk, or copied into a FIFO) and
    `commit()` (renamed into place); `discard()` (or an interruption) leaves nothing under the final
    name. Splitting the two lets a set of files all be made durable before any of them is renamed."""

    def __init__(self, path: Path, mode: str = "wb", newline: str | None = None) -> None:
        self.path = path
        self.target = output_target(path)
        self.finished = False
        self._temp: Path | None = None
        encoding = None if "b" in mode else "utf-8"
        if self.target == DEVICE:
            fd = _open_special(path, DEVICE)
            self.file: IO = os.fdopen(fd, mode, encoding=encoding, newline=newline)  # type: ignore[type-arg]
        elif self.target == FIFO:
            # Anonymous: nothing is left behind, whatever ends the process.
            self.file = tempfile.TemporaryFile(mode.replace("w", "w+"), encoding=encoding, newline=newline)  # noqa: SIM115
        else:
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            self._temp = Path(temp)
            self.file = os.fdopen(handle, mode, encoding=encoding, newline=newline)

    def finish(self) -> None:
        self.file.flush()
        if self.target == FIFO:
            self._copy_into_fifo()
        elif self.target == REGULAR or self.target == NEW:
            os.fsync(self.file.fileno())
        self.file.close()
        self.finished = True

    def _copy_into_fifo(self) -> None:
        spool = getattr(self.file, "buffer", self.file)  # the bytes under a text spool
        spool.seek(0)
        # Blocks until a reader opens the FIFO, as any writer into a FIFO does.
        with os.fdopen(_open_special(self.path, FIFO), "wb") as fifo:
            shutil.copyfileobj(spool, fifo)

    def commit(self) -> None:
        if not self.finished:
            self.finish()
        if self._temp is None:
            return  # a device or FIFO was written in place
        if self.target == REGULAR:
            with contextlib.suppress(OSError):  # it may have gone meanwhile: the output is still right
                os.chmod(self._temp, stat.S_IMODE(os.stat(self.path, follow_symlinks=False).st_mode))
        os.replace(self._temp, self.path)
        self._temp = None

    def discard(self) -> None:
        if not self.file.closed:
            with contextlib.suppress(OSError):  # what is still buffered may not fit either (a full disk)
                self.file.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
        elif self.target == FIFO and not self.finished:
            self._end_fifo()

    def _end_fifo(self) -> None:
        # A reader already waiting on the FIFO gets an empty output (an end of file) instead of
        # waiting for ever; with no reader there, nothing is done (the open fails at once).
        try:
            os.close(_open_special(self.path, FIFO, os.O_NONBLOCK))
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
        except OutputRefused:
            pass
