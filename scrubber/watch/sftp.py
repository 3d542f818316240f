"""Drop folders on an SFTP server (paramiko), with the same layout as on a local disk.

The server's host key must be in a known_hosts file: an unknown or changed key is refused at once
(never trusted blindly, never retried as if the line had dropped). A dropped connection is opened
again with growing pauses; every step of the watcher can be repeated after a reconnect (a rename
that already happened shows as a missing source, which the watcher reads as "done" or "try
later"), so no file is ever half-taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar

import paramiko

from .log import EventLog
from .storage import AccessRefused, Entry, Identity, NotARegularFile, UnreadableFile, kind_of

T = TypeVar("T")

# OSError is also what SFTP answers for a missing file or a refused permission: only these
# errnos (and paramiko's own errors, EOF, timeouts) mean the connection itself is gone.
_CONNECTION_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT, errno.ECONNABORTED,
                      errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


class UnknownHostKey(paramiko.SSHException):
    """The server's key is not in known_hosts (paramiko's RejectPolicy raises a bare SSHException,
    which would read as a dropped connection)."""


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(f"the host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in "
                             f"{self.known_hosts}: refused; add it there once you have checked it")


def is_refusal(exc: BaseException) -> bool:
    """The server refuses us, or we refuse it: repeating cannot help."""
    return isinstance(exc, paramiko.BadHostKeyException | paramiko.AuthenticationException | UnknownHostKey)


def is_connection_problem(exc: BaseException) -> bool:
    if is_refusal(exc):
        return False  # repeating cannot help: refuse at once
    if isinstance(exc, paramiko.SSHException | EOFError | ConnectionError | TimeoutError
                  | paramiko.ssh_exception.NoValidConnectionsError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _CONNECTION_ERRNOS or "socket is closed" in str(exc).lower()
    return False


class SftpStorage:
    def __init__(self, host: str, port: int, username: str, root: str, *, identity: Path | None = None,
                 known_hosts: Path | None = None, log: EventLog | None = None, attempts: int = 6,
                 first_pause: float = 1.0, connect_timeout: float = 15.0) -> None:
        self.host, self.port, self.username = host, port, username
        self.root = root.rstrip("/") or "/"
        self.identity = identity
        self.known_hosts = known_hosts or Path("~/.ssh/known_hosts").expanduser()
        self.log = log or EventLog()
        self.attempts, self.first_pause, self.connect_timeout = attempts, first_pause, connect_timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._staged: dict[Path, str] = {}
        # Connect now, with the same retries as any step: a wrong host key or login fails at once.
        self._call(lambda sftp: sftp.normalize("."))

    # -- the connection ------------------------------------------------------------------------

    def describe(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}{self.root}"

    def _connect(self) -> None:
        client = paramiko.SSHClient()
        # Host keys come from known_hosts only; anything else is refused.
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_RefuseUnknown(self.known_hosts))
        client.connect(self.host, port=self.port, username=self.username,
                       key_filename=str(self.identity) if self.identity else None,
                       look_for_keys=self.identity is None, allow_agent=self.identity is None,
                       timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                       auth_timeout=self.connect_timeout)
        self._client, self._sftp = client, client.open_sftp()

    def _call(self, action: Callable[[paramiko.SFTPClient], T]) -> T:
        """Run one SFTP step; on a dropped connection, connect again (pausing 1, 2, 4 ... s) and
        repeat it. After the last attempt the error goes up as an OSError (the watcher retries later)."""
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            try:
                if self._sftp is None:
                    self._connect()
                return action(self._sftp)  # type: ignore[arg-type]
            except Exception as exc:
                if is_refusal(exc):
                    self._drop()
                    raise AccessRefused(f"{type(exc).__name__}: {exc}") from None
                if not is_connection_problem(exc):
                    raise
                self._drop()
                if attempt == self.attempts:
                    raise ConnectionError(f"SFTP connection to {self.host}:{self.port} failed: {exc}") from exc
                self.log.event("connection lost", server=f"{self.host}:{self.port}", problem=str(exc) or
                               type(exc).__name__, retry_in=pause, attempt=attempt)
                time.sleep(pause)
                pause = min(pause * 2, 60.0)
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        for closing in (self._sftp, self._client):
            try:
                if closing is not None:
                    closing.close()
            except Exception:
                pass
        self._sftp = self._client = None

    def close(self) -> None:
        self._drop()
        for local in self._staged:
            shutil.rmtree(local, ignore_errors=True)

    def _path(self, path: str) -> str:
        return str(PurePosixPath(self.root) / path)

    # -- the Storage interface -------------------------------------------------------------------

    def makedirs(self, folder: str) -> None:
        parts = PurePosixPath(self._path(folder)).parts
        for i in range(1, len(parts) + 1):
            current = str(PurePosixPath(*parts[:i]))
            if not self.exists_absolute(current):
                try:
                    self._call(lambda sftp, p=current: sftp.mkdir(p))
                except OSError:
                    if not self.exists_absolute(current):
                        raise

    def exists_absolute(self, path: str) -> bool:
        try:
            self._call(lambda sftp: sftp.stat(path))
            return True
        except FileNotFoundError:
            return False

    def exists(self, path: str) -> bool:
        return self.exists_absolute(self._path(path))

    def list(self, folder: str) -> list[Entry]:
        attributes = self._call(lambda sftp: sftp.listdir_attr(self._path(folder)))
        # The server's readdir reports lstat attributes (OpenSSH): a link shows as a link.
        return [Entry(a.filename, a.st_size or 0, float(a.st_mtime or 0), kind_of(a.st_mode or 0))
                for a in attributes]

    def identify(self, path: str) -> Identity:
        found = self._call(lambda sftp: sftp.lstat(self._path(path)))
        if not stat.S_ISREG(found.st_mode or 0):
            raise NotARegularFile(path, kind_of(found.st_mode or 0))
        return found.st_size or 0, int(found.st_mtime or 0)

    def _reading(self, path: str, read: Callable[[paramiko.SFTPFile], T]) -> T:
        """Read a regular file on the server. SFTP has no O_NOFOLLOW: lstat first (a link, a FIFO
        that would hang the server's sftp process in open, a device are refused unopened), then
        check what was opened with fstat. A refused read is this file's problem."""
        def action(sftp: paramiko.SFTPClient) -> T:
            mode = sftp.lstat(self._path(path)).st_mode or 0
            if not stat.S_ISREG(mode):
                raise NotARegularFile(path, kind_of(mode))
            with sftp.open(self._path(path), "rb") as handle:
                opened = handle.stat().st_mode or 0
                if not stat.S_ISREG(opened):
                    raise NotARegularFile(path, kind_of(opened))  # swapped after the lstat
                return read(handle)

        try:
            return self._call(action)
        except (FileNotFoundError, ConnectionError, AccessRefused, NotARegularFile):
            raise
        except OSError as exc:  # permission denied, or the server's read failed
            raise UnreadableFile(path, exc) from None

    def read_range(self, path: str, start: int, length: int) -> bytes:
        def read(handle: paramiko.SFTPFile) -> bytes:
            handle.seek(max(start, 0))
            return handle.read(length)

        return self._reading(path, read)

    def fetch(self, path: str) -> tuple[BinaryIO, bool]:
        """A local copy of the file, for the scrub (which reads it twice: hash, then claims)."""
        handle, local = tempfile.mkstemp(prefix="scrubber-sftp-", suffix=".837")
        os.close(handle)

        def copy(remote: paramiko.SFTPFile) -> None:
            remote.prefetch()
            with open(local, "wb") as out:  # again from the start on a reconnect
                shutil.copyfileobj(remote, out, 1 << 20)

        try:
            self._reading(path, copy)
        except BaseException:
            os.unlink(local)
            raise
        return open(local, "rb"), True

    def rename(self, source: str, target: str) -> None:
        # SFTP's own rename refuses to replace an existing target, which is what the watcher wants.
        if self.exists(target):
            raise FileExistsError(f"{target} already exists")
        self._call(lambda sftp: sftp.rename(self._path(source), self._path(target)))

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call(lambda sftp: sftp.remove(self._path(path)))

    def remove_tree(self, folder: str) -> None:
        try:
            entries = self.list(folder)
        except FileNotFoundError:
            return
        for entry in entries:
            child = f"{folder}/{entry.name}"
            if entry.is_dir:
                self.remove_tree(child)
            else:
                self.remove(child)
        with contextlib.suppress(FileNotFoundError):
            self._call(lambda sftp: sftp.rmdir(self._path(folder)))

    def write_text(self, path: str, text: str) -> None:
        temporary = f"{path}.tmp"
        data = text.encode("utf-8")

        def write(sftp: paramiko.SFTPClient) -> None:
            with sftp.open(self._path(temporary), "wb") as handle:
                handle.write(data)

        self._call(write)
        self.remove(path)
        self._call(lambda sftp: sftp.rename(self._path(temporary), self._path(path)))

    def stage(self, path: str) -> Path:
        local = Path(tempfile.mkdtemp(prefix="scrubber-stage-"))
        self._staged[local] = path
        return local

    def publish(self, staged: Path, path: str, target: str) -> None:
        """Upload the staged outputs into the remote staging folder, then rename it into place."""
        self.remove_tree(path)
        self.makedirs(path)
        for local in sorted(staged.iterdir()):
            self._call(lambda sftp, f=local: sftp.put(str(f), self._path(f"{path}/{f.name}")))
        self.rename(path, target)
        shutil.rmtree(staged, ignore_errors=True)
        self._staged.pop(staged, None)
