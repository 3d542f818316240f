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
        # per-user cache, keyed by the file's bytes, and a code's HcpcsCode is made when asked.
        data = path.read_bytes()
        self._rows: dict[str, tuple[str, str, str, str]] = derived(
            "hcpcs", data, HCPCS_ROWS_VERSION, lambda: _hcpcs_rows(path, data), _is_row_table)
        self._codes: dict[str, HcpcsCode] = {}

    def get(self, code: str) -> HcpcsCode | None:
        found = self._codes.get(code)
        if found is None:
            row = self._rows.get(code)
            if row is None:
                return None
            found = self._codes[code] = HcpcsCode(code, _date(row[0]), _date(row[1]), row[2], row[3])
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
        # As the HCPCS table: the rows from the per-user cache, each product's entries made when asked.
        data = path.read_bytes()
        self._rows: dict[str, list[tuple[str, str, str]]] = derived(
            "ndc_crosswalk", data, CROSSWALK_ROWS_VERSION, lambda: _crosswalk_rows(data), _is_row_table)
        self._by_product: dict[str, list[CrosswalkEntry]] = {}

    def product(self, ndc11: str) -> list[CrosswalkEntry]:
        """The crosswalk rows for the NDC's labeler and product (its first nine digits)."""
        key = ndc11[:9]
        found = self._by_product.get(key)
        if found is None:
            rows = self._rows.get(key)
            if rows is None:
                return []
            found = self._by_product[key] = [CrosswalkEntry(*row) for row in rows]
        return found


HCPCS_ROWS_VERSION = 1  # raise when _hcpcs_rows changes what it gives
CROSSWALK_ROWS_VERSION = 1  # raise when _crosswalk_rows changes what it gives


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


def _crosswalk_rows(data: bytes) -> dict[str, list[tuple[str, str, str]]]:
    """NDC product (first nine digits) -> its rows (NDC without hyphens, HCPCS code, drug name)."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for row in _csv_rows(data):
        ndc = row["ndc"].replace("-", "")
        rows.setdefault(ndc[:9], []).append((ndc, row["hcpcs"], row["drug_name"]))
    return rows


def _is_row_table(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in itertools.islice(value, 10))


class Icd10Table:
    """ICD-10-CM codes (without dots) and which of them are billable (have no subcodes)."""

    def __init__(self, codes: set[str], version: str, valid_from: dt.date, valid_through: dt.date,
                 index: tuple[list[str], list[str]] | None = None) -> None:
        self.version = version
        self.valid_from = valid_from
        self.valid_through = valid_through
        self._codes = codes
        self._sorted, headers = index if index is not None else _icd10_index(codes)
        self._headers = set(headers)

    @classmethod
    def from_code_list(cls, path: Path, version: str, valid_from: dt.date, valid_through: dt.date) -> Icd10Table:
        """Read a code list with one code per line (dots optional, text after a space ignored):
        the format of simple-icd-10-cm's list and of CMS's order-file code column."""
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except OSError as exc:
            raise RuleDataError(str(path), "(file)", f"a readable ICD-10-CM code list ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise RuleDataError(str(path), "(file)", f"a readable ICD-10-CM code list ({exc})") from None
        # Reading the list and indexing it costs 0.1 s of every run that reads a diagnosis: the
        # index is kept in the per-user cache, keyed by the list's bytes.
        index = derived("icd10cm", data, ICD10_INDEX_VERSION, lambda: _icd10_index(_icd10_codes(text)), _is_index)
        if not index[0]:
            raise RuleDataError(str(path), "(file)", "an ICD-10-CM code list (one code per line)")
        return cls(set(index[0]), version, valid_from, valid_through, (index[0], index[1]))

    def knows(self, code: str) -> bool:
        return code in self._codes

    def is_billable(self, code: str) -> bool:
        return code in self._codes and code not in self._headers

    def example_subcode(self, code: str) -> str | None:
        """The first billable code under `code`, for a message. The codes are sorted once and
        searched by bisection: C004 can fire on every claim of a large file."""
        for candidate in self._sorted[bisect.bisect_right(self._sorted, code):]:
            if not candidate.startswith(code):
                return None
            if candidate not in self._headers:
                return candidate
        return None


ICD10_INDEX_VERSION = 1  # raise when _icd10_codes or _icd10_index change what they give


def _icd10_codes(text: str) -> set[str]:
    codes: set[str] = set()
    for line in text.splitlines():
        code = line.split(" ", 1)[0].replace(".", "").strip().upper()
        # Chapters are numbers and blocks are ranges (A00-A09): not codes.
        if len(code) >= 3 and code[0].isalpha() and "-" not in code:
            codes.add(code)
    return codes


def _icd10_index(codes: set[str]) -> tuple[list[str], list[str]]:
    """The codes sorted, and the header codes among them. A code is a header (has subcodes) when the
    code after it in sorted order extends it: the codes under a prefix sort right after it. One sort
    instead of a set probe per prefix of every code, and the order serves example_subcode too."""
    ordered = sorted(codes)
    return ordered, [code for code, following in itertools.pairwise(ordered) if following.startswith(code)]


def _is_index(value: object) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, list) for v in value)
            and all(isinstance(c, str) for c in value[0][:10]))


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
