"""Validate a file with pyx12 4.0.0 as a trading partner would (its own reader and driver)."""

from __future__ import annotations

import functools
import io
import logging
import re

import pyx12.params
import pyx12.x12n_document

logging.getLogger("pyx12").setLevel(logging.CRITICAL)

# pyx12 has maps for X222A1 and X223A2 only; the scrubber reads the later errata as those.
_READ_AS = {b"005010X222A2": b"005010X222A1", b"005010X223A1": b"005010X223A2", b"005010X223A3": b"005010X223A2"}


@functools.lru_cache(maxsize=256)
def pyx12_valid(data: bytes) -> bool:
    """True when pyx12 finds no error and its 999 accepts every transaction set."""
    if not data.isascii():
        return False
    for found, read_as in _READ_AS.items():
        data = data.replace(found, read_as)
    ack = io.StringIO()
    try:
        ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(data.decode("ascii")), ack, None)
    except Exception:  # pyx12 raises on files it cannot take at all
        return False
    # pyx12's 999 can say "accepted" while errors exist; require both to agree.
    return bool(ok) and not re.search(r"IK5\*[RE]|AK9\*[RPE]", ack.getvalue())
