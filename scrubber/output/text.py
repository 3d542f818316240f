"""Text from a claim file, made safe to show: control characters as visible escapes.

A claim file may carry any byte (a NUL in a patient's name, an ESC in CLM01). XML cannot hold
most control characters at all (lxml refuses them), a terminal acts on them, and a spreadsheet or
log line can be forged with a CR or LF. Every renderer shows such text through `visible`, so the
clerk sees `\\x1b` where the file has an ESC, and no output can be broken by one.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; tab is kept where text allows it (see `visible`).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: str, keep_tab: bool = False) -> str:
    """`text` with every control character written as a `\\xNN` escape."""
    pattern = _CONTROLS_BUT_TAB if keep_tab else _CONTROLS
    return pattern.sub(_escape, text) if pattern.search(text) else text
