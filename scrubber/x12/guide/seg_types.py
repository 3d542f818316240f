"""X12 data types as pyx12 4.0.0 checks them (pyx12/validation.py), without pyx12.

Kept apart from segments.py because these are the rules of the X12 standard (character sets,
numbers, dates, times) while segments.py is about one guide's segments. Every function here
answers exactly as pyx12's IsValidDataType does for the same value, except where pyx12 raises
(an RD8 range with more than one hyphen), which is simply not a valid range here.
"""

from __future__ import annotations

import re

_MODE = re.S | re.ASCII
# pyx12 matches ^-?[0-9]+ and ^-?[0-9]*(\.[0-9]+)? with search() and then requires the match to be
# the whole value: that is a full match.
_NUMBER = re.compile(r"-?[0-9]+", _MODE)
_DECIMAL = re.compile(r"-?[0-9]*(?:\.[0-9]+)?", _MODE)
# The basic and extended character sets; 5010 adds ^ and ` to the extended one (pyx12 rec_ID_E5).
_BAD_CHAR = {
    "00501": re.compile(r"""[^A-Z0-9!"&'()*+,\-\./:;?= a-z%~@\[\]_{}\\|<>^`#$]""", _MODE),
    "other": re.compile(r"""[^A-Z0-9!"&'()*+,\-\./:;?= a-z%~@\[\]_{}\\|<>#$]""", _MODE),
}
_NOT_DIGIT = re.compile(r"[^0-9]", _MODE)
_DATE_TYPES = ("RD8", "DT", "D8", "D6")

# What pyx12 calls a control character, in the order it looks for them (the first kind found in
# this order is the one it names, wherever it sits in the value).
CONTROL_CHARACTERS: tuple[tuple[str, str], ...] = (
    ("\x07", "BEL"), ("\x09", "HT"), ("\x0a", "LF"), ("\x0b", "VT"), ("\x0c", "FF"), ("\x0d", "CR"),
    ("\x1c", "FS"), ("\x1d", "GS"), ("\x1e", "RS"), ("\x1f", "US"),
    ("\x01", "SOH"), ("\x02", "STX"), ("\x03", "ETX"), ("\x04", "EOT"), ("\x05", "ENQ"), ("\x06", "ACK"),
    ("\x11", "DC1"), ("\x12", "DC2"), ("\x13", "DC3"), ("\x14", "DC4"), ("\x15", "NAK"), ("\x16", "SYN"),
    ("\x17", "ETB"),
)
_ANY_CONTROL = re.compile("[" + "".join(re.escape(c) for c, _ in CONTROL_CHARACTERS) + "]")


def control_character(value: str) -> str | None:
    """The name pyx12 gives the control character in value ("<HT>"), or None."""
    if _ANY_CONTROL.search(value) is None:
        return None
    for char, name in CONTROL_CHARACTERS:
        if char in value:
            return f"<{name}>"
    return None  # pragma: no cover - the search above found one of them


def bad_character_pattern(icvn: str) -> re.Pattern[str]:
    """The character-set check for AN and ID elements (the extended set pyx12 uses by default)."""
    return _BAD_CHAR["00501" if icvn == "00501" else "other"]


def is_valid_time(value: str) -> bool:
    if _NOT_DIGIT.search(value):
        return False
    if value[0:2] > "23" or value[2:4] > "59":
        return False
    # Seconds are optional; decimal seconds pyx12 does not accept.
    return len(value) <= 4 or (6 <= len(value) <= 8 and value[4:6] <= "59")


def is_valid_date(data_type: str, value: str) -> bool:
    if data_type == "D8" and len(value) != 8:
        return False
    if data_type == "D6" and len(value) != 6:
        return False
    if _NOT_DIGIT.search(value) or len(value) not in (6, 8, 12):
        return False
    if len(value) == 6:  # a two-digit year: pyx12 puts years below 50 in this century
        value = ("20" if int(value[0:2]) < 50 else "19") + value
    year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
    if year < 1800 or month < 1 or month > 12:
        return False
    if month in (1, 3, 5, 7, 8, 10, 12):
        last = 31
    elif month in (4, 6, 9, 11):
        last = 30
    elif year % 4 == 0 and not (year % 100 == 0 and year % 400 != 0):
        last = 29
    else:
        last = 28
    if day < 1 or day > last:
        return False
    return len(value) != 12 or is_valid_time(value[8:12])


def is_valid_type(value: str, data_type: str | None, icvn: str) -> bool:
    """pyx12's IsValidDataType(value, data_type, charset="E", icvn)."""
    if not data_type:
        return True
    if data_type[0] == "N":
        return _NUMBER.fullmatch(value) is not None
    if data_type == "R":
        return _DECIMAL.fullmatch(value) is not None
    if data_type in ("ID", "AN"):
        return bad_character_pattern(icvn).search(value) is None
    if data_type == "RD8":
        parts = value.split("-")
        # pyx12 unpacks exactly two parts and raises on more: a range has one hyphen.
        return len(parts) == 2 and is_valid_date("D8", parts[0]) and is_valid_date("D8", parts[1])
    if data_type in ("DT", "D8", "D6"):
        return is_valid_date(data_type, value)
    if data_type == "TM":
        return is_valid_time(value)
    return data_type == "B"


def is_date_type(data_type: str | None) -> bool:
    return data_type in _DATE_TYPES
