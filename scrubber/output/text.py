"""Text from a claim file, made safe to show: control characters as visible escapes.

A claim file may carry any byte (a NUL in a patient's name, an ESC in CLM01). XML cannot hold
most control characters at all (lxml refuses them), a terminal acts on them, and a spreadsheet or
log line can be forged with a CR or LF. Every renderer shows such text through `visible`, so the
clerk sees `\\x1b` where the file has an ESC, and no output can be broken by one.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; in markup (HTML), tab and line breaks are kept: XML holds them, and
# the page's own style sheet has line breaks.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_IN_MARKUP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: str, markup: bool = False) -> str:
    """`text` with every control character written as a `\\xNN` escape (in markup: but tab, LF, CR)."""
    pattern = _CONTROLS_IN_MARKUP if markup else _CONTROLS
    return pattern.sub(_escape, text) if pattern.search(text) else text
