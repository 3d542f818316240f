"""The code tables: HCPCS Level II, the ASP NDC-HCPCS crosswalk, and ICD-10-CM.

Each table knows its version and the dates it speaks for, so a rule can tell "not a code"
from "not a code in this (older) table".
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import importlib.util
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RuleDataError
from ..model.claim import is_digits
from ..user_cache import derived


@dataclass(frozen=True, slots=True)
class HcpcsCode:
    code: str
    added: dt.date | None
    terminated: dt.date | None
    cross_reference: str
    short_description: str

    def valid_on(self, day: dt.date) -> bool:
        if self.added is not None and day < self.added:
            return False
        return self.terminated is None or day <= self.terminated


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


class HcpcsTable:
    def __init__(self, path: Path, version: str, terminations_listed_from: dt.date, valid_through: dt.date,
                 unclassified: frozenset[str]) -> None:
        self.version = version
        self.terminations_listed_from = terminations_listed_from
        self.valid_through = valid_through
        self.unclassified = unclassified
        # Reading the CSV cost about 0.05 s of every run: its rows, checked, are kept in the
        # per-user cache, keyed by the file's bytes, as CSV text by the code's first three
        # characters (a few hundred strings: unmarshalling a tuple per row was 5-14 ms a run). A
        # group is read, and its codes' HcpcsCode made, when a code of it is first asked for.
        data = path.read_bytes()
        self._groups: dict[str, str] = derived(
            "hcpcs", data, HCPCS_ROWS_VERSION, lambda: _grouped(_hcpcs_rows(path, data).items(), _HCPCS_GROUP),
            _is_row_table)
        self._codes: dict[str, HcpcsCode] = {}
        self._groups_read: set[str] = set()

    def get(self, code: str) -> HcpcsCode | None:
        found = self._codes.get(code)
        if found is None:
            group = code[:_HCPCS_GROUP]
            if group in self._groups_read:
                return None
            for row in _group_rows(self._groups.get(group, "")):
                self._codes[row[0]] = HcpcsCode(row[0], _date(row[1]), _date(row[2]), row[3], row[4])
            self._groups_read.add(group)  # (after its codes: a thread that sees it read finds them)
            found = self._codes.get(code)
        return found

    def speaks_for(self, day: dt.date) -> bool:
        """Whether a code missing from the table on this date is missing for real."""
        return self.terminations_listed_from <= day <= self.valid_through

    @staticmethod
    def is_level_two(code: str) -> bool:
        """HCPCS Level II codes start with a letter; CPT (Level I) codes are five digits."""
        return len(code) == 5 and code[0].isalpha() and is_digits(code[1:4])


@dataclass(frozen=True, slots=True)
class CrosswalkEntry:
    ndc: str  # 11 digits, no hyphens
    hcpcs: str
    drug_name: str


class NdcCrosswalk:
    def __init__(self, path: Path, version: str) -> None:
        self.version = version
        # As the HCPCS table: the rows from the per-user cache as CSV text, one string a product,
        # each product's entries made when asked.
        data = path.read_bytes()
        self._groups: dict[str, str] = derived(
            "ndc_crosswalk", data, CROSSWALK_ROWS_VERSION, lambda: _crosswalk_rows(data), _is_row_table)
        self._by_product: dict[str, list[CrosswalkEntry]] = {}

    def product(self, ndc11: str) -> list[CrosswalkEntry]:
        """The crosswalk rows for the NDC's labeler and product (its first nine digits)."""
        key = ndc11[:9]
        found = self._by_product.get(key)
        if found is None:
            rows = self._groups.get(key)
            if rows is None:
                return []
            found = self._by_product[key] = [CrosswalkEntry(*row) for row in _group_rows(rows)]
        return found


HCPCS_ROWS_VERSION = 2  # raise when _hcpcs_rows or _grouped change what they give
CROSSWALK_ROWS_VERSION = 2  # raise when _crosswalk_rows or _grouped change what they give
_HCPCS_GROUP = 3  # a HCPCS code's group in the cache: its first three characters (a few hundred groups)


def _grouped(rows: Iterable[tuple[str, tuple[str, ...]]], width: int) -> dict[str, str]:
    """Rows (key, fields) as CSV text by the key's first `width` characters: the csv module writes
    and reads back any text exactly, and one string a group unmarshals far faster than a tuple a row."""
    groups: dict[str, list[tuple[str, ...]]] = {}
    for key, fields in rows:
        groups.setdefault(key[:width], []).append((key, *fields))
    texts = {}
    for group, members in groups.items():
        out = io.StringIO()
        csv.writer(out).writerows(members)
        texts[group] = out.getvalue()
    return texts


def _group_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _csv_rows(data: bytes) -> csv.DictReader:
    return csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))


def _hcpcs_rows(path: Path, data: bytes) -> dict[str, tuple[str, str, str, str]]:
    """code -> (added, terminated, cross reference, short description), every row checked."""
    rows = {}
    for row in _csv_rows(data):
        try:
            code = HcpcsCode(row["code"], _date(row["added"]), _date(row["terminated"]),
                             row["cross_reference"], row["short_description"])
        except (KeyError, ValueError) as exc:
            expected = f"columns code, added, terminated, ... ({exc})"
            raise RuleDataError(str(path), f"row {row.get('code')!r}", expected) from None
        rows[code.code] = (row["added"], row["terminated"], code.cross_reference, code.short_description)
    return rows


def _crosswalk_rows(data: bytes) -> dict[str, str]:
    """NDC product (first nine digits) -> its rows (NDC without hyphens, HCPCS code, drug name), as
    CSV text (see _grouped)."""
    rows = []
    for row in _csv_rows(data):
        ndc = row["ndc"].replace("-", "")
        rows.append((ndc, (row["hcpcs"], row["drug_name"])))
    return _grouped(rows, 9)


def _is_row_table(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in itertools.islice(value, 10))


class Icd10Table:
    """ICD-10-CM codes (without dots) and which of them are billable (have no subcodes)."""

    def __init__(self, categories: dict[str, str], version: str, valid_from: dt.date,
                 valid_through: dt.date) -> None:
        self.version = version
        self.valid_from = valid_from
        self.valid_through = valid_through
        # Category (a code's first three characters: its subcodes share them) -> its codes, sorted,
        # joined by spaces. A category's codes are split and indexed when one of them is first asked
        # for: a set of all 98,000 codes cost 20-35 ms of every run (unmarshalling and hashing them).
        self._categories = categories
        self._codes: set[str] = set()  # the codes of the categories read so far
        self._headers: set[str] = set()  # those of them that have subcodes
        self._sorted: dict[str, list[str]] = {}  # category read -> its codes, sorted

    @classmethod
    def from_code_list(cls, path: Path, version: str, valid_from: dt.date, valid_through: dt.date) -> Icd10Table:
        """Read a code list with one code per line (dots optional, text after a space ignored):
        the format of simple-icd-10-cm's list and of CMS's order-file code column."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RuleDataError(str(path), "(file)", f"a readable ICD-10-CM code list ({exc.strerror})") from None
        # Reading the list and indexing it costs 0.1 s of every run that reads a diagnosis: the
        # index is kept in the per-user cache, keyed by the list's bytes (bytes that were decoded
        # once, so the text is decoded only to build it).
        categories = derived("icd10cm", data, ICD10_INDEX_VERSION,
                             lambda: _icd10_categories(_icd10_codes(_decode(path, data))), _is_categories)
        if not categories:
            raise RuleDataError(str(path), "(file)", "an ICD-10-CM code list (one code per line)")
        return cls(categories, version, valid_from, valid_through)

    def knows(self, code: str) -> bool:
        self._category(code)
        return code in self._codes

    def is_billable(self, code: str) -> bool:
        self._category(code)
        return code in self._codes and code not in self._headers

    def example_subcode(self, code: str) -> str | None:
        """The first billable code under `code`, for a message. The category's codes are sorted and
        searched by bisection: C004 can fire on every claim of a large file."""
        ordered = self._category(code)
        for candidate in ordered[bisect.bisect_right(ordered, code):]:
            if not candidate.startswith(code):
                return None
            if candidate not in self._headers:
                return candidate
        return None

    def _category(self, code: str) -> list[str]:
        """The sorted codes of `code`'s category, read when first asked for. A code is a header (has
        subcodes) when the code after it in sorted order extends it: the codes under a prefix sort
        right after it, within its category. One sort instead of a set probe per prefix of every code."""
        category = code[:3]
        ordered = self._sorted.get(category)
        if ordered is None:
            text = self._categories.get(category)
            ordered = text.split(" ") if text else []
            self._headers.update(c for c, following in itertools.pairwise(ordered) if following.startswith(c))
            self._codes.update(ordered)
            self._sorted[category] = ordered  # (last: a thread that sees the category read finds its codes)
        return ordered


ICD10_INDEX_VERSION = 2  # raise when _icd10_codes or _icd10_categories change what they give


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleDataError(str(path), "(file)", f"a readable ICD-10-CM code list ({exc})") from None


def _icd10_codes(text: str) -> set[str]:
    codes: set[str] = set()
    for line in text.splitlines():
        code = line.split(" ", 1)[0].replace(".", "").strip().upper()
        # Chapters are numbers and blocks are ranges (A00-A09): not codes.
        if len(code) >= 3 and code[0].isalpha() and "-" not in code:
            codes.add(code)
    return codes


def _icd10_categories(codes: set[str]) -> dict[str, str]:
    """The codes sorted, by category (first three characters), joined by spaces (a code holds none:
    the list's text after a space is not the code)."""
    categories: dict[str, list[str]] = {}
    for code in sorted(codes):
        categories.setdefault(code[:3], []).append(code)
    return {category: " ".join(members) for category, members in categories.items()}


def _is_categories(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in itertools.islice(value.items(), 10))


def packaged_icd10_code_list() -> Path:
    """simple-icd-10-cm's own code list, found without importing the package (its import
    parses the whole tabular XML, over a second of start-up)."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuleDataError("simple-icd-10-cm", "(package)", "the simple-icd-10-cm package to be installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    lists = sorted(data.glob("code-list-*.txt"))
    if not lists:
        raise RuleDataError(str(data), "(file)", "a code-list-*.txt file from simple-icd-10-cm")
    return lists[-1]
