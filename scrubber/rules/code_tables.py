"""The code tables: HCPCS Level II, the ASP NDC-HCPCS crosswalk, and ICD-10-CM.

Each table knows its version and the dates it speaks for, so a rule can tell "not a code"
from "not a code in this (older) table".
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import importlib.util
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
        self._codes: dict[str, HcpcsCode] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    code = HcpcsCode(row["code"], _date(row["added"]), _date(row["terminated"]),
                                     row["cross_reference"], row["short_description"])
                except (KeyError, ValueError) as exc:
                    expected = f"columns code, added, terminated, ... ({exc})"
                    raise RuleDataError(str(path), f"row {row.get('code')!r}", expected) from None
                self._codes[code.code] = code

    def get(self, code: str) -> HcpcsCode | None:
        return self._codes.get(code)

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
        self._by_product: dict[str, list[CrosswalkEntry]] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                ndc = row["ndc"].replace("-", "")
                entry = CrosswalkEntry(ndc, row["hcpcs"], row["drug_name"])
                self._by_product.setdefault(ndc[:9], []).append(entry)

    def product(self, ndc11: str) -> list[CrosswalkEntry]:
        """The crosswalk rows for the NDC's labeler and product (its first nine digits)."""
        return self._by_product.get(ndc11[:9], [])


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
