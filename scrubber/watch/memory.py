"""How much memory a watcher process may use, so that a file too large to scrub fails alone.

A claim's model takes some 3 to 4 KB a service line (a claim of 100,000 lines, 6 MB of input, takes
about 600 MB), and a sender may drop a file whose one claim holds millions. Without a limit, the
kernel's out-of-memory killer ends whichever process it picks: a worker (the watcher then scrubs
the file in its own process) and then the watcher itself, which, restarted, takes the same file
again from work/: the line stops. With a limit on each process's data (RLIMIT_DATA, inherited by
the workers it forks), the allocation that crosses it raises MemoryError in the process that made
it; the watcher handles that as any failed scrub (tried once more, then error/ with the reason)
and goes on with the next file.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import re
import resource
from pathlib import Path

# Of the memory the machine (or its control group) has, the share the watcher's processes may use
# between them, each an equal part: the watcher and its workers could all be scrubbing large files.
SHARE = 0.75
# Never less per process: a watcher with its tables loaded uses well under 150 MB of data.
FLOOR = 256 << 20
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_UNITS = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Where a control group says how much memory it may use (v2, then v1); "max" or a huge number: none.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def parse_limit(value: str) -> int | str | None:
    """`--memory-limit`: "auto", "none" (or 0), or a size: 512M, 4G, 4096 (MiB). Bytes, "auto" or None."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text in ("none", "0"):
        return None
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{value!r} is not a size: give e.g. 2G, 800M, 4096 (MiB), auto or none")
    size = int(match[1]) * _UNITS[match[2].upper()]
    if size < FLOOR:
        raise ValueError(f"{value!r} is below {FLOOR >> 20} MiB: too little for the watcher itself")
    return size


def machine_memory() -> int | None:
    """The memory this process can have: the machine's, or its control group's if that is less."""
    try:
        found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        found = None
    for name in _CGROUP_LIMITS:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            found = min(found, int(text)) if found else int(text)
    return found


def default_limit(jobs: int, memory: int | None = None) -> int | None:
    """Each process's part of SHARE of the memory (the watcher and `jobs` workers; one job: the
    watcher alone), at least FLOOR. None when the memory cannot be told."""
    memory = machine_memory() if memory is None else memory
    if not memory:
        return None
    processes = 1 + (jobs if jobs > 1 else 0)
    return max(FLOOR, int(memory * SHARE) // processes)


def apply_limit(limit: int | None) -> int | None:
    """Limit this process's data (and its future children's) to `limit` bytes, never above a limit
    already set (`ulimit -d`); returns the soft limit now in force (None: none)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if limit is not None:
        for already in (soft, hard):
            if already != resource.RLIM_INFINITY:
                limit = min(limit, already)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        soft = limit
    return None if soft == resource.RLIM_INFINITY else soft


def out_of_memory_text() -> str:
    """Why a scrub raised MemoryError, for the reason file and the log."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY:
        return "out of memory: the machine had no more to give the scrub"
    return (f"out of memory: scrubbing it needs more than the {soft >> 20} MiB a watcher process may use "
            "(--memory-limit); a claim of many thousands of service lines is the usual cause")


def release_memory() -> None:
    """After a MemoryError: what the failed scrub held, given back, so the next file has the room.
    (Its objects wait for the cyclic collector, which the pipeline runs seldom; glibc keeps freed
    pages at the top of its heap, which count against the limit, until told to give them back.)"""
    gc.collect()
    if platform.libc_ver()[0] == "glibc":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)
