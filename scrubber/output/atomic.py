"""Outputs that appear whole or not at all: written under a temporary name, renamed at the end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO


class AtomicFile:
    """A file written beside its final path and moved there by `commit()`; `discard()` (or an
    interruption) leaves nothing under the final name. `finish()` flushes it to disk first, so a
    set of files can all be made durable before any of them is renamed."""

    def __init__(self, path: Path, mode: str = "wb", newline: str | None = None) -> None:
        self.path = path
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._temp = Path(temp)
        encoding = None if "b" in mode else "utf-8"
        self.file: IO = os.fdopen(handle, mode, encoding=encoding, newline=newline)  # type: ignore[type-arg]
        self.finished = False

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.finished = True

    def commit(self) -> None:
        if not self.finished:
            self.finish()
        os.replace(self._temp, self.path)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self._temp.unlink(missing_ok=True)
