"""The rules' view of CMS's drug data (scrubber.refdata) and of rules/drug_data.toml.

The store is opened on the first lookup only, so a run without drug lines never imports
scrubber.refdata; lookups are remembered for the process (a file of claims asks the same code
on the same day many times), the latest MEMO_LIMIT of each kind: a drug's answer for a day holds
about 8 KB, and a watcher, or a file spanning a year of service dates, asks for ever more days.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bounded import remember
from ..errors import RuleDataError

if TYPE_CHECKING:  # the refdata package is imported on first use, not with the rules
    from ..refdata import CrosswalkItem, DrugReference, QuarterUsed, ReferenceData

DATA_FILE = "drug_data.toml"
MEMO_LIMIT = 1024  # (code, day) answers remembered, of each kind: about 16 MB for the two at most
DATA_ENV = "SCRUBBER_DATA"  # scrubber.refdata.DATA_ENV, named here so the rules load without refdata


class _Store:
    """One ReferenceData per value of $SCRUBBER_DATA, with its lookups remembered."""

    def __init__(self) -> None:
        self.env: str | None = None
        self.data: ReferenceData | None = None
        self.drugs: dict[tuple[str, dt.date], DrugReference | None] = {}
        self.ndcs: dict[tuple[str, dt.date], tuple[CrosswalkItem, ...]] = {}

    def current(self) -> ReferenceData:
        env = os.environ.get(DATA_ENV, "")
        if self.data is None or env != self.env:
            # Imported here, once per store: an import statement on every lookup cost more than
            # the lookup (two a drug line).
            from ..refdata import ReferenceData

            self.env, self.data = env, ReferenceData.open()
            self.drugs.clear()
            self.ndcs.clear()
        return self.data


_STORE = _Store()


def _guard(lookup: Any, *args: Any) -> Any:
    try:
        return lookup(*args)
    except Exception as exc:
        # (imported here, when a lookup failed: an import statement on every lookup, two a drug
        # line, cost as much as the lookup)
        from ..refdata import ReferenceDataError

        if not isinstance(exc, ReferenceDataError):
            raise
        # A damaged site store: one message, exit 2, no traceback.
        raise RuleDataError(os.environ.get(DATA_ENV, "") or "the reference data store", "(store)",
                            f"a readable store ({exc}); run `scrubber data check`") from None


def check_site_stores() -> None:
    """Read the manifests of the stores $SCRUBBER_DATA names (a few ms), so that a store that is
    missing or unreadable is refused when the rules load. Without $SCRUBBER_DATA nothing is read:
    the shipped store is read on the first drug line."""
    if os.environ.get(DATA_ENV):
        _guard(lambda: _STORE.current().sources)


def drug(code: str, day: dt.date) -> DrugReference | None:
    """What CMS's files in effect on `day` say about `code`, or None."""
    data = _STORE.current()
    key = (code, day)
    found = _STORE.drugs.get(key, _UNKNOWN)
    if found is _UNKNOWN:
        found = remember(_STORE.drugs, key, _guard(data.drug, code, day), MEMO_LIMIT)
    return found


def cms_drug(code: str, day: dt.date | None) -> DrugReference | None:
    """The code's data when it is a drug in CMS's files on `day` (else None)."""
    if day is None or not code:
        return None
    found = drug(code, day)
    return found if found is not None and found.is_drug else None


def cms_drugs() -> Callable[[str, dt.date | None], DrugReference | None]:
    """`cms_drug` for the lines of one claim: $SCRUBBER_DATA is read at its first lookup, not at
    every one (an environment lookup cost as much as the remembered lookup itself). As with
    `cms_drug`, a claim that looks nothing up opens no store."""
    data: ReferenceData | None = None

    def lookup(code: str, day: dt.date | None) -> DrugReference | None:
        nonlocal data
        if day is None or not code:
            return None
        if data is None:
            data = _STORE.current()
        key = (code, day)
        remembered = _STORE.drugs
        found = remembered.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = remember(remembered, key, _guard(data.drug, code, day), MEMO_LIMIT)
        return found if found is not None and found.is_drug else None

    return lookup


_UNKNOWN = object()  # not looked up yet (None is a lookup's answer: not in CMS's files)


def crosswalk_rows(ndc11: str, day: dt.date) -> tuple[CrosswalkItem, ...]:
    data = _STORE.current()
    key = (ndc11, day)
    found = _STORE.ndcs.get(key)
    if found is None:
        found = remember(_STORE.ndcs, key, _guard(data.codes_for_ndc, ndc11, day), MEMO_LIMIT)
    return found


def crosswalk_quarter(day: dt.date) -> QuarterUsed | None:
    return _guard(_STORE.current().crosswalk_quarter, day)


def quarter_of(found: DrugReference, kind: str, setting: str = "") -> QuarterUsed | None:
    for quarter in found.quarters:  # (a loop, not next() over a generator: a few quarters, per line)
        if quarter.kind == kind and quarter.setting == setting:
            return quarter
    return None


def per_source(quarter: QuarterUsed | None, title: str, day: dt.date | None) -> str:
    """How a message names the data it used: the quarter, and whether it is the nearest one only."""
    if quarter is None:
        return ""
    if quarter.outside and day is not None:
        return f" (per CMS {title} {quarter.quarter}, the nearest to the service date {day.isoformat()})"
    return f" (per CMS {title} {quarter.quarter})"


# -- rules/drug_data.toml ---------------------------------------------------------------------


@dataclass(frozen=True)
class DrugDataSettings:
    asp_under_ratio: Decimal
    asp_over_ratio: Decimal
    mue_settings: dict[str, str]  # claim kind (837P, 837I) -> MUE table setting
    mue_per_line: frozenset[int]
    mue_per_date: frozenset[int]
    impossible_above_mue_mai: frozenset[int]


_SETTINGS: dict[tuple[Path, ...], DrugDataSettings] = {}


def settings(layers: list[Path] | tuple[Path, ...]) -> DrugDataSettings:
    """rules/drug_data.toml, with each site layer's values on top (a later layer wins, key by key)."""
    key = tuple(layers)
    if key not in _SETTINGS:
        merged: dict[str, dict[str, Any]] = {}
        where: dict[tuple[str, str], Path] = {}
        for layer in layers:
            path = layer / DATA_FILE
            if not path.is_file():
                continue
            try:
                table = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise RuleDataError(str(path), "(file)", f"readable TOML ({exc})") from None
            for section, values in table.items():
                if not isinstance(values, dict):
                    raise RuleDataError(str(path), section, "a table")
                merged.setdefault(section, {}).update(values)
                where.update({(section, k): path for k in values})
        _SETTINGS[key] = _read_settings(merged, where, layers[0] / DATA_FILE)
    return _SETTINGS[key]


def _read_settings(merged: dict[str, dict[str, Any]], where: dict[tuple[str, str], Path],
                   default: Path) -> DrugDataSettings:
    def value(section: str, name: str) -> Any:
        found = merged.get(section, {}).get(name)
        if found is None:
            raise RuleDataError(str(default), f"{section}.{name}", "a value (required)")
        return found

    def ratio(section: str, name: str) -> Decimal:
        text = value(section, name)
        try:
            number = Decimal(str(text))
        except InvalidOperation:
            number = Decimal(0)
        if not isinstance(text, str | int) or number <= 0:
            raise RuleDataError(str(where.get((section, name), default)), f"{section}.{name}",
                                "a positive number (as a string, e.g. \"20\")")
        return number

    def mais(section: str, name: str) -> frozenset[int]:
        found = value(section, name)
        if not isinstance(found, list) or not all(isinstance(m, int) and 0 <= m <= 9 for m in found):
            raise RuleDataError(str(where.get((section, name), default)), f"{section}.{name}",
                                "a list of MUE adjudication indicators (digits)")
        return frozenset(found)

    kinds = value("mue", "settings")
    if not isinstance(kinds, dict) or not set(kinds) <= {"837P", "837I"} or \
            not set(kinds.values()) <= {"practitioner", "outpatient_hospital"}:
        raise RuleDataError(str(where.get(("mue", "settings"), default)), "mue.settings",
                            "a table of 837P / 837I to practitioner or outpatient_hospital")
    return DrugDataSettings(
        asp_under_ratio=ratio("asp", "under_ratio"),
        asp_over_ratio=ratio("asp", "over_ratio"),
        mue_settings=dict(kinds),
        mue_per_line=mais("mue", "per_line"),
        mue_per_date=mais("mue", "per_date"),
        impossible_above_mue_mai=mais("units", "impossible_above_mue_mai"),
    )


# -- what a hand-written profile overrides -----------------------------------------------------


@dataclass(frozen=True)
class Override:
    """One value a drug profile (rules/drugs.toml) sets for a code, and what CMS's files give."""

    code: str
    key: str
    profile: Any  # the profile's value
    generated: str  # what CMS's files say, with the file ("10 MG, ASP pricing October 2025"), or why nothing


DOSAGE_KIND = {"ASP pricing": "asp_pricing", "ASP crosswalk": "asp_crosswalk", "HCPCS descriptor": "hcpcs"}


def profile_overrides(profiles: Any, day: dt.date) -> list[Override]:
    """For every profiled code, the values its profile sets over CMS's files in effect on `day`:
    the billing unit, the billing units one item holds, single-dose, the daily ceiling."""
    out = []
    for profile in profiles.drugs:
        for code in profile.codes:
            ref = drug(code.hcpcs, day)
            unit = "none"
            if ref is not None and ref.dosage:
                kind = DOSAGE_KIND.get(ref.dosage_source or "", "hcpcs")
                used = quarter_of(ref, kind)
                unit = f"{ref.dosage}, {ref.dosage_source}{' ' + used.quarter if used else ''}"
            out.append(Override(code.hcpcs, "billing_unit", code.billing_unit, unit))
            sizes = [vial / code.billing_unit_mg for vial in profile.vial_sizes()]
            if sizes:
                cms = ", ".join(f"{s.normalize():f}" for s in ref.item_sizes) if ref is not None else ""
                out.append(Override(code.hcpcs, "units_per_item", [float(s) if s % 1 else int(s) for s in sizes],
                                    f"{cms or 'none'}, ASP crosswalk"))
            out.append(Override(code.hcpcs, "single_dose", profile.single_dose,
                                "not stated in CMS's files"))
            if profile.plausible_units_per_day is not None:
                limits = ", ".join(f"{m.units} ({m.setting.replace('_', ' ')}, MAI {m.mai})"
                                   for m in (ref.mue.values() if ref is not None else ()))
                out.append(Override(code.hcpcs, "units_per_day", profile.plausible_units_per_day,
                                    f"MUE {limits}" if limits else "no MUE"))
    return out
