"""Calendar quarters: CMS publishes its drug files quarterly, and a line is checked against the
quarter in effect on its date of service."""

from __future__ import annotations

import datetime as dt

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_end(day: dt.date) -> dt.date:
    start = quarter_start(day)
    following = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def quarter_label(start: dt.date) -> str:
    """How CMS names a quarter's files: "October 2025"."""
    return f"{MONTHS[start.month - 1]} {start.year}"
