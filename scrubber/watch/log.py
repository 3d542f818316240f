"""The watcher's log: one line per event, as text or JSON; file names, tokens and counts only,
never patient data.

File names come from senders and may hold anything but "/" and NUL: a CR or LF would forge a log
line, an ESC would drive the operator's terminal. Text logs escape them (JSON escapes them anyway).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import unicodedata
from collections.abc import Iterator
from typing import Any, TextIO

# Control characters, format characters (bidi overrides...) and line/paragraph separators.
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


class EventLog:
    def __init__(self, stream: TextIO | None = None, fmt: str = "text") -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._json = fmt == "json"

    def event(self, name: str, **fields: Any) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self._json:
            line = json.dumps({"ts": stamp, "event": name, **fields}, default=str)
        else:
            line = f"{stamp} {name}" + "".join(f" {key}={_text(value)}" for key, value in fields.items())
        self._stream.write(line + "\n")
        self._stream.flush()


class _PipelineNotes(logging.Handler):
    """The pipeline's notes (the "scrubber" logger: a worker process that stopped, its work done
    again in the watcher's process) as `worker stopped` events: one line per event, JSON in a JSON
    log, rather than a bare line from Python's last-resort handler."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        self._log.event("worker stopped", detail=record.getMessage().removeprefix("scrubber: "))


@contextlib.contextmanager
def pipeline_notes_in(log: EventLog) -> Iterator[None]:
    """While the watcher runs, the pipeline's notes go to its log (and nowhere else)."""
    logger = logging.getLogger("scrubber")
    handler, propagate = _PipelineNotes(log), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def printable(text: str) -> str:
    """`text` with every unprintable character written as a JSON escape (\\u000d, \\u001b, \\u202e)."""
    if not any(_unprintable(char) for char in text):
        return text
    return "".join(json.dumps(char)[1:-1] if _unprintable(char) else char for char in text)


def _unprintable(char: str) -> bool:
    return unicodedata.category(char) in _UNPRINTABLE


def _text(value: Any) -> str:
    text = str(value)
    if " " in text or "=" in text or '"' in text or "\\" in text or not text or text != printable(text):
        # A JSON string (non-ASCII kept readable): json escapes C0 controls, printable() the rest.
        return printable(json.dumps(text, ensure_ascii=False))
    return text
