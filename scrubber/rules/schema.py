"""Validate rule data as it is loaded: one message naming the file, the key and what was expected."""

from __future__ import annotations

import datetime as dt
import pickle
import re
import sys
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import RuleDataError
from ..user_cache import derived

_HCPCS = re.compile(r"^[A-Z0-9][0-9]{3}[A-Z0-9]$")
_ICD10_PREFIX = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{0,4})?$")
_NDC_542 = re.compile(r"^\d{5}-\d{4}-\d{2}$")
_RULE_ID = re.compile(r"^[A-Z][0-9]{3}$")


TOML_CACHE_VERSION = 1  # raise when what read_toml keeps for a file changes
# The parse is tomllib's, which may change with any Python release (a fix to the parser): each
# Python keeps its own (toml/3.11.7/ in the cache folder).
_TOML_KIND = "toml/{}.{}.{}".format(*sys.version_info[:3])


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML, parsed. Parsing the rule files cost 15-20 ms of every run (the catalog
    alone 15): what a file parsed into is kept in the per-user cache, keyed by its bytes. A file
    that does not parse is never kept, so its error is found, and reported, as before."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuleDataError(str(path), "(file)", f"a readable file ({exc.strerror})") from None
    try:
        return derived(_TOML_KIND, data, TOML_CACHE_VERSION, lambda: tomllib.loads(data.decode()),
                       lambda value: isinstance(value, dict), codec=pickle)
    except tomllib.TOMLDecodeError as exc:
        raise RuleDataError(str(path), "(file)", f"valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8
        raise RuleDataError(str(path), "(file)", f"valid TOML, in UTF-8 (byte {exc.start} is not UTF-8)") from None


# A spec maps each allowed key to (kind, required). Kinds: str, bool, int, date, decimal,
# hcpcs, icd10-prefix, ndc, list[str], list[hcpcs], list[icd10-prefix], table, list[table].
Spec = Mapping[str, tuple[str, bool]]


def check_table(path: Path | str, where: str, table: Any, spec: Spec, *, partial: bool = False) -> None:
    """Check a table against its spec. `partial`: a change to an entry an earlier layer made,
    which names only the keys it changes, so required keys may be missing."""
    if not isinstance(table, dict):
        raise RuleDataError(str(path), where or "(file)", "a table")
    for key in table:
        if key not in spec:
            allowed = ", ".join(sorted(spec))
            raise RuleDataError(str(path), _join(where, key), f"a known key (one of: {allowed})")
    for key, (kind, required) in spec.items():
        if key not in table:
            if required and not partial:
                raise RuleDataError(str(path), _join(where, key), f"a {kind} (the key is required)")
            continue
        _check_value(str(path), _join(where, key), table[key], kind)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_value(path: str, key: str, value: Any, kind: str) -> None:
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list):
            raise RuleDataError(path, key, f"a list of {inner}")
        for i, item in enumerate(value):
            _check_value(path, f"{key}[{i}]", item, inner)
        return
    ok = {
        "str": lambda v: isinstance(v, str) and v.strip() != "",
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "date": lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
        "decimal": _is_positive_decimal,
        "hcpcs": lambda v: isinstance(v, str) and bool(_HCPCS.match(v)),
        "icd10-prefix": lambda v: isinstance(v, str) and bool(_ICD10_PREFIX.match(v)),
        "ndc": lambda v: isinstance(v, str) and bool(_NDC_542.match(v)),
        "table": lambda v: isinstance(v, dict),
        "rule-id": lambda v: isinstance(v, str) and bool(_RULE_ID.match(v)),
        "severity": lambda v: v in ("error", "warning"),
    }[kind]
    if not ok(value):
        expected = {
            "str": "a non-empty string",
            "bool": "true or false",
            "int": "a whole number, 0 or more",
            "date": "a date (YYYY-MM-DD, unquoted)",
            "decimal": 'a positive number written as a string, e.g. "0.5"',
            "hcpcs": "a HCPCS code (five characters, e.g. J9032)",
            "icd10-prefix": "an ICD-10-CM code or prefix with its dot (e.g. C84.4)",
            "ndc": "an 11-digit NDC in 5-4-2 form with hyphens (e.g. 72893-0002-01)",
            "table": "a table",
            "rule-id": "a rule id (one capital letter and three digits, e.g. U003)",
            "severity": '"error" or "warning"',
        }[kind]
        raise RuleDataError(path, key, f"{expected}, not {value!r}")


def _is_positive_decimal(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value) > 0
    except InvalidOperation:
        return False


def check_dates(path: Path | str, where: str, table: Mapping[str, Any], start: str, end: str) -> None:
    if start in table and end in table and table[end] < table[start]:
        raise RuleDataError(str(path), f"{where}.{end}", f"a date on or after {start} ({table[start]})")
