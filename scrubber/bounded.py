"""Memos that hold at most a given number of entries, the oldest forgotten first.

The validator's checkers (per map and delimiters), the walker's loop resets (per set of loop
paths) and the CMS lookups (per code and day) are kept for the process; a watcher lives for weeks
and its senders choose the delimiters and the service dates, so none may grow without end. A dict
keeps its keys in insertion order: the first is the oldest. Nothing here imports the rest of the
package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def remember(memo: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """Keep `value` under `key`, forgetting the oldest entry when `memo` holds `limit`; `value`."""
    if len(memo) >= limit:
        del memo[next(iter(memo))]
    memo[key] = value
    return value


def kept(memo: dict[Any, Any], key: Any, make: Callable[[], Any], limit: int) -> Any:
    """`memo[key]`, made by `make()` and remembered (as `remember`) when absent or None."""
    found = memo.get(key)
    if found is None:
        found = remember(memo, key, make(), limit)
    return found
