"""The per-user cache of the reference data tables (scrubber/refdata/cache.py): built on first use,
read alone afterwards, bound to the exact table it was built from, rebuilt when it is not what its
name promises, and never needed (memory-only) when its folder cannot be written. Each test points
XDG_CACHE_HOME at a folder of its own."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from scrubber.refdata import BUILTIN_STORE, ReferenceData, ReferenceDataError, cache, lookup
from scrubber.refdata.cache import CachedTable, cache_dir
from scrubber.refdata.lookup import _Table

NOV_2025 = dt.date(2025, 11, 3)
# The codes issue 10 names (two vial sizes, a biosimilar, per 0.1 mg, per 1 mg, mcg, units, mL, a
# vaccine, a C9 code, J9032), on dates inside, before and after the quarters shipped.
CODES = ("J9312", "Q5115", "J9041", "J9271", "J9032", "J1569", "J7050", "J0256", "90715", "C9290", "A9552", "J3490")
DAYS = (dt.date(2023, 6, 1), dt.date(2024, 5, 1), NOV_2025, dt.date(2026, 12, 1))
NDCS = ("50242-0051-21", "72893000201", "00053-7201-02", "99999-9999-99")


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "scrubber" / "refdata"


def _cache_files(folder):
    return sorted(folder.glob("*.sqlite")) if folder.is_dir() else []


def _fail_if_the_store_is_read(monkeypatch):
    def read_lines(*_args):
        raise AssertionError("a table was read from the store although its cache file was there")

    monkeypatch.setattr(cache, "read_lines", read_lines)
    monkeypatch.setattr(lookup, "read_lines", read_lines)


def test_the_cache_gives_what_the_tables_give(cache_home):
    cached, memory = ReferenceData(use_cache=True), ReferenceData(use_cache=False)
    for code in CODES:
        for day in DAYS:
            assert cached.drug(code, day) == memory.drug(code, day), (code, day)
    for ndc in NDCS:
        for day in DAYS:
            assert cached.codes_for_ndc(ndc, day) == memory.codes_for_ndc(ndc, day), (ndc, day)
    assert cached.codes_for_ndc("50242-0051-21", NOV_2025)  # rituximab: found, not two empty answers
    assert {type(t) for t in cached._tables.values()} == {CachedTable}
    assert {type(t) for t in memory._tables.values()} == {_Table}


def test_the_first_lookup_builds_the_cache_and_the_next_run_reads_only_it(cache_home, monkeypatch):
    first = ReferenceData().drug("J9312", NOV_2025)
    assert len(_cache_files(cache_home)) == 5  # the five tables of the quarter in effect, no more
    _fail_if_the_store_is_read(monkeypatch)
    again = ReferenceData()
    assert again.drug("J9312", NOV_2025) == first
    assert again.codes_for_ndc("50242-0051-21", NOV_2025)
    assert first.item_sizes == (10, 50)


def test_a_cache_file_that_is_not_sqlite_is_rebuilt_not_used(cache_home):
    expected = ReferenceData(use_cache=False).drug("J9312", NOV_2025)
    ReferenceData().drug("J9312", NOV_2025)
    for path in _cache_files(cache_home):
        path.write_bytes(b"not a database at all" * 100)
    data = ReferenceData()
    assert data.drug("J9312", NOV_2025) == expected
    assert {type(t) for t in data._tables.values()} == {CachedTable}
    for path in _cache_files(cache_home):
        assert path.read_bytes().startswith(b"SQLite format 3\x00")


def test_a_cache_file_of_another_table_or_format_is_rebuilt_not_used(cache_home):
    expected = ReferenceData(use_cache=False).drug("J9312", NOV_2025)
    ReferenceData().drug("J9312", NOV_2025)
    files = _cache_files(cache_home)
    pricing = next(p for p in files if _meta(p)["kind"] == "asp_pricing")
    crosswalk = next(p for p in files if _meta(p)["kind"] == "asp_crosswalk")
    shutil.copyfile(pricing, crosswalk)  # valid SQLite, but another table's rows under this name
    hcpcs = next(p for p in files if _meta(p)["kind"] == "hcpcs")
    with sqlite3.connect(hcpcs) as db:  # a cache of an older layout
        db.execute("UPDATE meta SET value = '0' WHERE key = 'format'")
    db.close()
    assert ReferenceData().drug("J9312", NOV_2025) == expected
    assert _meta(crosswalk)["kind"] == "asp_crosswalk" and _meta(hcpcs)["format"] == str(cache.FORMAT)


def _meta(path):
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()


def test_a_damaged_store_table_is_refused_although_its_cache_is_warm(cache_home, tmp_path):
    store = tmp_path / "copy"
    shutil.copytree(BUILTIN_STORE, store)
    assert ReferenceData([store], builtin=None).drug("J9312", NOV_2025).payment_limit is not None
    [table] = store.glob("asp_pricing-2025-10-01-*.csv.gz")
    table.write_bytes(gzip.compress(gzip.decompress(table.read_bytes()).replace(b"J9312,", b"J9313,")))
    with pytest.raises(ReferenceDataError, match="does not match the manifest's digest"):
        ReferenceData([store], builtin=None).drug("J9312", NOV_2025)


def test_a_cache_file_that_fails_during_a_run_is_dropped_and_the_store_answers(cache_home):
    data = ReferenceData()
    expected = data.drug("J9312", NOV_2025)
    table = next(t for t in data._tables.values() if t.info.kind == "asp_crosswalk")
    table._db.close()  # an sqlite3.Error from here on, as a file damaged under a running scrub gives
    table._db = _Failing()
    assert table.code("J9312") == ReferenceData(use_cache=False)._table(table.info).code("J9312")
    assert [i.ndc for i in data.codes_for_ndc("50242-0051-21", NOV_2025)] == ["50242-0051-21"]
    assert not (cache_home / table._path.name).exists()  # the next run builds it again
    assert ReferenceData().drug("J9312", NOV_2025) == expected


class _Failing:
    def execute(self, *_args):
        raise sqlite3.DatabaseError("database disk image is malformed")

    def close(self):
        pass


def test_a_cache_folder_that_cannot_be_written_leaves_the_lookups_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where the cache folder would go\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))  # ENOTDIR, even for root
    data = ReferenceData()
    assert data.drug("J9312", NOV_2025) == ReferenceData(use_cache=False).drug("J9312", NOV_2025)
    assert {type(t) for t in data._tables.values()} == {_Table}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_cache_folder_follows_xdg_and_ignores_a_relative_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_dir() == tmp_path / "home" / ".cache" / "scrubber" / "refdata"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "scrubber" / "refdata"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "scrubber" / "refdata"


def test_a_lookup_loads_neither_the_readers_of_cms_files_nor_zipfile_nor_urllib_request():
    heavy = ("scrubber.refdata.sources", "zipfile", "urllib.request", "http")  # what a first drug line need not pay
    code = ("import sys, datetime, scrubber.cli; before = set(sys.modules); import scrubber.refdata as r; "
            "r.ReferenceData().drug('J9312', datetime.date(2025, 11, 3)); "
            f"print(sorted(m for m in {heavy!r} if m in set(sys.modules) - before))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_build_removes_the_cache_files_of_other_formats_and_killed_builds(cache_home):
    cache_home.mkdir(parents=True)
    older = cache_home / f"{'0' * 64}-f{cache.FORMAT - 1}.sqlite"
    older.write_bytes(b"an older scrubber's cache")
    killed, fresh = cache_home / ".x-f1.sqlite.abc.tmp", cache_home / ".y-f1.sqlite.def.tmp"
    killed.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    other_table = cache_home / f"{'1' * 64}-f{cache.FORMAT}.sqlite"
    other_table.write_bytes(b"another store's table")
    ReferenceData().drug("J9312", NOV_2025)
    assert not older.exists() and not killed.exists()
    assert fresh.exists() and other_table.exists()  # a build under way elsewhere; another store's table


def test_a_lookup_from_another_thread_is_answered_all_the_same(cache_home):
    """A library user may look up from a worker thread: SQLite refuses a connection made in another
    thread, and the lookup answers from the store's table instead of failing."""
    data = ReferenceData()
    expected = data.drug("J9312", NOV_2025)
    found = []
    worker = threading.Thread(target=lambda: found.append(data.drug("J9271", NOV_2025)))
    worker.start()
    worker.join()
    assert found == [ReferenceData(use_cache=False).drug("J9271", NOV_2025)] and found[0] is not None
    assert len(_cache_files(cache_home)) == 5  # the files are fine: kept
    assert ReferenceData().drug("J9312", NOV_2025) == expected
