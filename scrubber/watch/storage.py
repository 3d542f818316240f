"""Where the drop folders live: a small interface, with a local implementation (and an SFTP one in
sftp.py). The watcher only ever talks to this interface, the way httpx talks to a transport.

Paths are relative to the drop root and use "/". Renames are atomic within the root; the watcher
relies on that for claiming a file and publishing its results.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    size: int
    mtime: float
    is_dir: bool


class Storage(Protocol):
    def describe(self) -> str: ...

    def makedirs(self, folder: str) -> None: ...

    def list(self, folder: str) -> list[Entry]: ...

    def exists(self, path: str) -> bool: ...

    def read_range(self, path: str, start: int, length: int) -> bytes: ...

    def fetch(self, path: str) -> tuple[BinaryIO, bool]:
        """An open binary stream of the file, and whether the caller must delete it after use
        (a local copy of a remote file)."""
        ...

    def rename(self, source: str, target: str) -> None: ...

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
                    stat = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone between listing and looking: an uploader renamed it
                entries.append(Entry(item.name, stat.st_size, stat.st_mtime, item.is_dir(follow_symlinks=False)))
        return entries

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def read_range(self, path: str, start: int, length: int) -> bytes:
        with self._path(path).open("rb") as handle:
            handle.seek(max(start, 0))
            return handle.read(length)

    def fetch(self, path: str) -> tuple[BinaryIO, bool]:
        return self._path(path).open("rb"), False

    def rename(self, source: str, target: str) -> None:
        # os.rename would replace an existing file silently; the watcher never wants that.
        destination = self._path(target)
        if destination.exists():
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
