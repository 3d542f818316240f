"""Where the drop folders live: a small interface, with a local implementation (and an SFTP one in
sftp.py). The watcher only ever talks to this interface, the way httpx talks to a transport.

Paths are relative to the drop root and use "/". Renames are atomic within the root; the watcher
relies on that for claiming a file and publishing its results.

A hostile sender can drop anything a file system can hold: the storage opens only regular files,
never follows a link and never blocks on a FIFO or a device, and says so with `NotARegularFile`.
A file it cannot read is `UnreadableFile`: that file's problem, not the watcher's.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

FILE, FOLDER, LINK, FIFO, SOCKET, DEVICE, OTHER = "file", "folder", "symbolic link", "FIFO", "socket", \
    "device", "special file"


def kind_of(mode: int) -> str:
    """What an entry is, from its lstat mode, in words for a reason file."""
    for test, kind in ((stat.S_ISREG, FILE), (stat.S_ISDIR, FOLDER), (stat.S_ISLNK, LINK), (stat.S_ISFIFO, FIFO),
                       (stat.S_ISSOCK, SOCKET), (stat.S_ISCHR, DEVICE), (stat.S_ISBLK, DEVICE)):
        if test(mode):
            return kind
    return OTHER


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    size: int
    mtime: float
    kind: str = FILE  # from lstat: a link is a link, whatever it points to

    @property
    def is_dir(self) -> bool:
        return self.kind == FOLDER

    @property
    def is_regular(self) -> bool:
        return self.kind == FILE


class FileProblem(Exception):
    """This file cannot be read as a claim file; the others can still be."""


class NotARegularFile(FileProblem):
    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.kind = kind


class UnreadableFile(FileProblem):
    def __init__(self, path: str, exc: OSError) -> None:
        super().__init__(f"cannot read {path}: {type(exc).__name__}: {exc.strerror or exc}")


class AccessRefused(Exception):
    """The storage refuses the watcher itself (an unknown or changed host key, a refused login):
    repeating cannot help, so the watcher stops."""


# A file's identity: unchanged means the same bytes. Locally (size, mtime, inode, ctime) in ns;
# over SFTP (size, mtime), all the protocol gives.
Identity = tuple[int, ...]


class Storage(Protocol):
    def describe(self) -> str: ...

    def makedirs(self, folder: str) -> None: ...

    def list(self, folder: str) -> list[Entry]: ...

    def exists(self, path: str) -> bool: ...

    def identify(self, path: str) -> Identity:
        """Size, time (and where it can, inode and change time) of a regular file, not following a
        link; `NotARegularFile` for anything else."""
        ...

    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Bytes of a regular file; `NotARegularFile` or `UnreadableFile` instead of following a
        link, blocking on a FIFO or failing the caller's whole pass."""
        ...

    def fetch(self, path: str) -> tuple[BinaryIO, bool]:
        """An open binary stream of the regular file (same errors as `read_range`), and whether
        the caller must delete it after use (a local copy of a remote file)."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Rename an entry itself (a link stays a link; nothing is opened); never replaces `target`."""
        ...

    def remove(self, path: str) -> None: ...

    def remove_tree(self, folder: str) -> None: ...

    def write_text(self, path: str, text: str) -> None: ...

    def stage(self, path: str) -> Path:
        """A fresh local directory to write the outputs of one input into, standing for the
        staging folder `path` (in the work folder)."""
        ...

    def publish(self, staged: Path, path: str, target: str) -> None:
        """Make the staged outputs appear at once as the folder `target` (in the outbox)."""
        ...

    def close(self) -> None: ...


class LocalStorage:
    """Drop folders on the local file system (or a mounted one that renames atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, path: str) -> Path:
        return self.root / path

    def makedirs(self, folder: str) -> None:
        self._path(folder).mkdir(parents=True, exist_ok=True)

    def list(self, folder: str) -> list[Entry]:
        entries = []
        with os.scandir(self._path(folder)) as found:
            for item in found:
                try:
                    found = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone between listing and looking: an uploader renamed it
                entries.append(Entry(item.name, found.st_size, found.st_mtime, kind_of(found.st_mode)))
        return entries

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._path(path))  # a dangling link is something too

    def identify(self, path: str) -> Identity:
        found = os.lstat(self._path(path))
        if not stat.S_ISREG(found.st_mode):
            raise NotARegularFile(path, kind_of(found.st_mode))
        return found.st_size, found.st_mtime_ns, found.st_ino, found.st_ctime_ns

    def _open(self, path: str) -> BinaryIO:
        """Open a regular file for reading, never through a link and never blocking: O_NOFOLLOW
        refuses a link, O_NONBLOCK keeps a FIFO (or a device) from holding the watcher in open(),
        and fstat checks what was opened, so a swap after any earlier look is caught too."""
        try:
            fd = os.open(self._path(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotARegularFile(path, LINK) from None
            raise UnreadableFile(path, exc) from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise NotARegularFile(path, kind_of(mode))
            return _Reading(os.fdopen(fd, "rb"), path)  # type: ignore[return-value]
        except BaseException:
            os.close(fd)
            raise

    def read_range(self, path: str, start: int, length: int) -> bytes:
        with self._open(path) as handle:
            handle.seek(max(start, 0))
            return handle.read(length)

    def fetch(self, path: str) -> tuple[BinaryIO, bool]:
        return self._open(path), False

    def rename(self, source: str, target: str) -> None:
        # os.rename would replace an existing entry silently; the watcher never wants that.
        destination = self._path(target)
        if os.path.lexists(destination):
            raise FileExistsError(f"{target} already exists")
        os.rename(self._path(source), destination)

    def remove(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)

    def remove_tree(self, folder: str) -> None:
        shutil.rmtree(self._path(folder), ignore_errors=True)

    def write_text(self, path: str, text: str) -> None:
        target = self._path(path)
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)

    def stage(self, path: str) -> Path:
        staged = self._path(path)
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        return staged

    def publish(self, staged: Path, path: str, target: str) -> None:
        # The outputs were written in place: one rename of the folder publishes them all.
        self.rename(path, target)

    def close(self) -> None:
        pass


class _Reading:
    """A file being read, whose read errors (EIO on a bad disk...) are the file's problem."""

    def __init__(self, handle: BinaryIO, path: str) -> None:
        self._handle, self._path = handle, path
        self.name = getattr(handle, "name", path)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as exc:
            raise UnreadableFile(self._path, exc) from None

    def readinto(self, buffer: bytearray) -> int | None:
        try:
            return self._handle.readinto(buffer)  # type: ignore[attr-defined]
        except OSError as exc:
            raise UnreadableFile(self._path, exc) from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._handle)
