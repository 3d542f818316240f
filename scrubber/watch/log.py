"""The watcher's log: one line per event, as text or JSON; file names, tokens and counts only,
never patient data."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO


class EventLog:
    def __init__(self, stream: TextIO | None = None, fmt: str = "text") -> None:
        self._stream = stream or sys.stderr
        self._json = fmt == "json"

    def event(self, name: str, **fields: Any) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self._json:
            line = json.dumps({"ts": stamp, "event": name, **fields}, default=str)
        else:
            line = f"{stamp} {name}" + "".join(f" {key}={_text(value)}" for key, value in fields.items())
        self._stream.write(line + "\n")
        self._stream.flush()


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or "=" in text or not text) else text
