"""Values derived from a file and kept in the per-user cache (scrubber/user_cache.py): the ICD-10-CM
table's index. Each test points XDG_CACHE_HOME at a folder of its own."""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
import sys
import tomllib

import pytest
from conftest import ROOT

from scrubber import user_cache
from scrubber.errors import RuleDataError
from scrubber.rules import code_tables, schema
from scrubber.rules.code_tables import Icd10Table, packaged_icd10_code_list
from scrubber.user_cache import cache_root, derived


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "scrubber"


def _counting(value):
    calls = []

    def build():
        calls.append(1)
        return value

    return build, calls


def test_a_value_is_derived_once_then_read_from_the_cache(home):
    build, calls = _counting((["A00", "A000"], ["A00"]))
    assert derived("test", b"source", 1, build, lambda v: isinstance(v, tuple)) == (["A00", "A000"], ["A00"])
    assert derived("test", b"source", 1, build, lambda v: isinstance(v, tuple)) == (["A00", "A000"], ["A00"])
    assert len(calls) == 1 and len(list((home / "test").glob("*.marshal"))) == 1


def test_other_bytes_or_another_version_never_find_the_value_of_others(home):
    build, calls = _counting("x")
    derived("test", b"one", 1, build, lambda v: True)
    derived("test", b"two", 1, build, lambda v: True)
    derived("test", b"one", 2, build, lambda v: True)
    assert len(calls) == 3


def test_a_file_that_is_not_what_its_name_promises_is_derived_again_and_replaced(home):
    build, calls = _counting(["A00"])
    derived("test", b"source", 1, build, lambda v: isinstance(v, list))
    [path] = (home / "test").glob("*.marshal")
    for damage in (b"not marshal data", path.read_bytes()[:-3], b""):
        path.write_bytes(damage)
        assert derived("test", b"source", 1, build, lambda v: isinstance(v, list)) == ["A00"]
    assert len(calls) == 4
    assert derived("test", b"source", 1, build, lambda v: isinstance(v, dict)) == ["A00"]  # refused by `valid`
    assert len(calls) == 5


def test_a_folder_that_cannot_be_written_derives_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where the cache folder would go\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    build, calls = _counting([1, 2])
    assert derived("test", b"source", 1, build, lambda v: True) == [1, 2]
    assert derived("test", b"source", 1, build, lambda v: True) == [1, 2]
    assert len(calls) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_cache_root_follows_xdg_and_ignores_a_relative_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert cache_root() == tmp_path / "home" / ".cache" / "scrubber"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "scrubber"
    assert user_cache.__doc__ and "imports the rest of the package" in user_cache.__doc__


def _table():
    return Icd10Table.from_code_list(packaged_icd10_code_list(), "test", dt.date(2025, 10, 1), dt.date(2026, 9, 30))


def test_the_icd10_index_read_from_the_cache_is_the_one_derived_from_the_list(home, monkeypatch):
    first = _table()
    assert len(list((home / "icd10cm").glob("*.marshal"))) == 1

    def no_parsing(_text):
        raise AssertionError("the code list was parsed although its index was in the cache")

    monkeypatch.setattr(code_tables, "_icd10_codes", no_parsing)
    again = _table()
    assert again._categories == first._categories
    assert again.is_billable("C8440") and not again.is_billable("C844") and again.example_subcode("C844") == "C8440"
    assert sum(len(codes.split(" ")) for codes in again._categories.values()) > 90_000


def test_icd10_categories_are_read_when_first_asked_for_and_answer_as_the_whole_list(home):
    """The table keeps its codes as one string a category and splits one when first asked (a set of
    every code cost 20-35 ms a run): what it answers is what the whole sorted list says."""
    table = _table()
    assert table._codes == set() and table._sorted == {}
    assert table.is_billable("C8440") and list(table._sorted) == ["C84"]
    assert not table.knows("C8") and not table.knows("ZZZ9") and table.example_subcode("ZZZ") is None
    assert table.knows("C844") and not table.is_billable("C844") and table.example_subcode("C84") == "C8400"
    codes = sorted(c for text in table._categories.values() for c in text.split(" "))
    headers = {code for code, following in itertools.pairwise(codes) if following.startswith(code)}
    for code in codes[::97]:
        assert (table.knows(code), table.is_billable(code)) == (True, code not in headers)
    assert table._headers == headers & table._codes


def test_an_empty_code_list_is_refused_cache_or_not(home, tmp_path):
    empty = tmp_path / "codes.txt"
    empty.write_text("1\nA00-A09\n")
    for _ in range(2):
        with pytest.raises(RuleDataError, match="an ICD-10-CM code list"):
            Icd10Table.from_code_list(empty, "test", dt.date(2025, 10, 1), dt.date(2026, 9, 30))


def _hcpcs(path):
    return code_tables.HcpcsTable(path, "test", dt.date(2025, 1, 1), dt.date(2025, 12, 31), frozenset())


def test_the_hcpcs_and_crosswalk_tables_read_from_the_cache_are_the_ones_parsed(home, monkeypatch):
    """Reading the two CSV tables cost about 0.1 s of every run: their checked rows are kept."""
    # The repository's tables (the package's own location differs between an editable install and
    # a built one: the CI installs the built one).
    tables = ROOT / "rules" / "code_tables"
    hcpcs_csv, crosswalk_csv = tables / "hcpcs_2025_oct.csv", tables / "asp_ndc_hcpcs_2025_oct.csv"
    first_hcpcs, first_crosswalk = _hcpcs(hcpcs_csv), code_tables.NdcCrosswalk(crosswalk_csv, "test")
    assert len(list((home / "hcpcs").glob("*.marshal"))) == len(list((home / "ndc_crosswalk").glob("*.marshal"))) == 1

    def no_parsing(*_args):
        raise AssertionError("the CSV was parsed although its rows were in the cache")

    monkeypatch.setattr(code_tables, "_csv_rows", no_parsing)
    hcpcs, crosswalk = _hcpcs(hcpcs_csv), code_tables.NdcCrosswalk(crosswalk_csv, "test")
    assert hcpcs.get("J9032") == first_hcpcs.get("J9032") == code_tables.HcpcsCode(
        "J9032", dt.date(2016, 1, 1), None, "", "Injection, belinostat, 10mg")
    assert hcpcs.get("J9032") is hcpcs.get("J9032") and hcpcs.get("Z9999") is None
    assert hcpcs._groups == first_hcpcs._groups and sum(t.count("\n") for t in hcpcs._groups.values()) > 8000
    assert crosswalk._groups == first_crosswalk._groups
    product = next(iter(crosswalk._groups))
    assert crosswalk.product(product + "01") == first_crosswalk.product(product + "01") != []
    assert crosswalk.product("99999999901") == []


def test_a_bad_hcpcs_row_is_refused_cache_or_not(home, tmp_path):
    bad = tmp_path / "hcpcs.csv"
    bad.write_text("code,added,terminated,cross_reference,short_description\nJ9032,2016-13-01,,,x\n")
    for _ in range(2):
        with pytest.raises(RuleDataError, match="row 'J9032'"):
            _hcpcs(bad)


def test_table_rows_kept_as_csv_text_read_back_exactly_with_commas_quotes_and_line_breaks(home, tmp_path):
    """The cache keeps the HCPCS and crosswalk rows as CSV text a group: a field holding the
    characters CSV quotes comes back as it was, from the cache as from the file."""
    hcpcs_csv = tmp_path / "hcpcs.csv"
    hcpcs_csv.write_text('code,added,terminated,cross_reference,short_description\n'
                         'J9032,2016-01-01,,"J9033, J9034","Inj, ""belinostat""\n10mg"\nJ9033,,2020-12-31,,x\n')
    crosswalk_csv = tmp_path / "crosswalk.csv"
    crosswalk_csv.write_text('ndc,hcpcs,drug_name\n12345-6789-01,J9032,"a, ""b"""\n12345-6789-02,J9032,c\n')
    for _ in range(2):  # derived, then read from the cache
        hcpcs, crosswalk = _hcpcs(hcpcs_csv), code_tables.NdcCrosswalk(crosswalk_csv, "test")
        assert hcpcs.get("J9032") == code_tables.HcpcsCode(
            "J9032", dt.date(2016, 1, 1), None, "J9033, J9034", 'Inj, "belinostat"\n10mg')
        assert hcpcs.get("J9033").terminated == dt.date(2020, 12, 31) and hcpcs.get("J9034") is None
        assert crosswalk.product("12345678901") == [
            code_tables.CrosswalkEntry("12345678901", "J9032", 'a, "b"'),
            code_tables.CrosswalkEntry("12345678902", "J9032", "c")]
    assert len(list((home / "hcpcs").glob("*.marshal"))) == len(list((home / "ndc_crosswalk").glob("*.marshal"))) == 1


def test_a_rule_file_is_parsed_once_then_read_from_the_cache_with_its_dates(home, tmp_path, monkeypatch):
    """Parsing the rule files cost 15-20 ms of every run: a file's parsed TOML (dates and all, kept
    with pickle) is read back from the cache, equal to a fresh parse, and a changed file is parsed."""
    rules = tmp_path / "drugs.toml"
    rules.write_text('[a]\nvalid_from = 2025-10-01\nnames = ["x", "y"]\nsize = 0.5\n')
    first = schema.read_toml(rules)
    assert first == {"a": {"valid_from": dt.date(2025, 10, 1), "names": ["x", "y"], "size": 0.5}}
    assert [p.relative_to(home).parts[:2] for p in home.glob("toml/*/*.pickle")] == [
        ("toml", "{}.{}.{}".format(*sys.version_info[:3]))]  # each Python keeps its own parse

    def no_parsing(_text):
        raise AssertionError("the TOML was parsed although it was in the cache")

    with monkeypatch.context() as patch:
        patch.setattr(tomllib, "loads", no_parsing)
        again = schema.read_toml(rules)
    assert again == first and again is not first and again["a"] is not first["a"]
    rules.write_text('[a]\nvalid_from = 2025-11-01\n')
    assert schema.read_toml(rules) == {"a": {"valid_from": dt.date(2025, 11, 1)}}


def test_a_rule_file_that_is_not_toml_is_reported_every_run_and_never_kept(home, tmp_path):
    bad = tmp_path / "payers.toml"
    bad.write_text("[a\nb = 1\n")
    for _ in range(2):
        with pytest.raises(RuleDataError, match=r"payers.toml.*valid TOML \(Expected"):
            schema.read_toml(bad)
    assert not (home / "toml").exists()


def test_a_rule_file_that_is_not_utf8_is_a_rule_data_error_not_an_internal_error(home, tmp_path):
    bad = tmp_path / "payers.toml"
    bad.write_bytes(b'[payers]\nname = "\xff\xfe"\n')
    with pytest.raises(RuleDataError, match=r"payers.toml.*valid TOML, in UTF-8 \(byte 17 is not UTF-8\)"):
        schema.read_toml(bad)
    assert not (home / "toml").exists()


def test_a_damaged_cache_file_is_derived_again(home):
    build, calls = _counting({"a": [dt.date(2025, 1, 1)]})
    assert derived("test", b"source", 1, build, lambda v: True, codec=pickle) == {"a": [dt.date(2025, 1, 1)]}
    (file,) = (home / "test").glob("*.pickle")
    file.write_bytes(b"\x80\x04garbage")
    assert derived("test", b"source", 1, build, lambda v: True, codec=pickle) == {"a": [dt.date(2025, 1, 1)]}
    assert len(calls) == 2
    assert derived("test", b"source", 1, build, lambda v: True, codec=pickle) == {"a": [dt.date(2025, 1, 1)]}
    assert len(calls) == 2


@pytest.fixture
def no_hang():
    """Fail, rather than hang, a test whose code blocks (opening a FIFO with no writer blocks)."""
    import signal

    def expired(_signum, _frame):
        raise TimeoutError("blocked for 20 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_fifo_or_a_link_where_a_cache_file_goes_is_neither_read_nor_followed(home, tmp_path, no_hang):
    import os

    build, calls = _counting(["A00"])
    derived("test", b"source", 1, build, lambda v: True)
    [path] = (home / "test").glob("*.marshal")
    elsewhere = tmp_path / "elsewhere.marshal"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    os.mkfifo(path)
    assert derived("test", b"source", 1, build, lambda v: True) == ["A00"]  # (opening it would block)
    assert path.is_file() and not path.is_symlink() and len(calls) == 2
    path.unlink()
    path.symlink_to(elsewhere)
    assert derived("test", b"source", 1, build, lambda v: True) == ["A00"]
    assert path.is_file() and not path.is_symlink() and len(calls) == 3
    assert derived("test", b"source", 1, build, lambda v: True) == ["A00"] and len(calls) == 3


def test_a_cached_value_unread_for_30_days_is_removed_when_another_is_stored(home):
    import hashlib
    import os
    import time

    def file_of(source: bytes):
        return home / "test" / f"{hashlib.sha256(source).hexdigest()}-v1.marshal"

    build, calls = _counting("x")
    derived("test", b"unread", 1, build, lambda v: True)
    derived("test", b"read", 1, build, lambda v: True)
    month_ago = time.time() - user_cache.UNUSED_FOR - 3_600
    for source in (b"unread", b"read"):
        os.utime(file_of(source), (month_ago, month_ago))
    assert derived("test", b"read", 1, build, lambda v: True) == "x"  # read from its file: marked used
    assert len(calls) == 2
    derived("test", b"new", 1, build, lambda v: True)  # stored: the unused one goes
    assert sorted((home / "test").iterdir()) == sorted([file_of(b"read"), file_of(b"new")])
    assert derived("test", b"unread", 1, build, lambda v: True) == "x" and len(calls) == 4  # derived again
