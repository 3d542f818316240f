"""The lookup API the rules use: a drug code on a date of service, an NDC on a date of service.

Every kind of file is looked up in the quarter in effect on the date of service. A date before the
oldest quarter or after the newest (or in a gap between two) uses the nearest quarter before it, or
the oldest when none is before it, and says so (`QuarterUsed.outside`), so a rule can warn naming it.
Tables are read on first use only: a run that looks up nothing reads nothing but the manifests, and
a lookup reads the rows it needs from the per-user cache of the tables (cache.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from .cache import CachedTable, open_table
from .columns import COLUMNS, FLAG_TEXT, INCONSISTENT, ndc11, ndc_of_line, to_decimal
from .dosage import Dosage, parse_dosage
from .errors import ReferenceDataError
from .store import SourceInfo, read_lines, read_manifest

DATA_ENV = "SCRUBBER_DATA"  # site stores (os.pathsep-separated), on top of the shipped one
BUILTIN_STORE = Path(__file__).resolve().parent / "cms"


@dataclass(frozen=True)
class QuarterUsed:
    """Which file answered for one kind of data, and whether the date of service lies outside it."""

    kind: str
    setting: str
    quarter: str  # "October 2025"
    effective_from: dt.date
    effective_to: dt.date
    outside: bool  # the date of service is not within the file's dates: the nearest file was used
    source: str

    def __str__(self) -> str:
        return f"{self.quarter} ({self.source})"


@dataclass(frozen=True)
class CrosswalkItem:
    """One NDC package of the ASP NDC-HCPCS crosswalk: how many billing units of `hcpcs` one item
    (BILLUNITS) and one package (BILLUNITSPKG, of PKG QTY items) hold."""

    hcpcs: str
    ndc: str  # as CMS prints it: 5-4-2 with hyphens
    labeler: str
    drug_name: str
    dosage: str
    package_size: str
    package_quantity: Decimal | None
    billing_units_per_item: Decimal | None  # BILLUNITS
    billing_units_per_package: Decimal | None  # BILLUNITSPKG
    flags: tuple[str, ...]  # why CMS's row cannot be trusted: never drive an error from a flagged row
    quarter: str

    @property
    def consistent(self) -> bool:
        """False for a row CMS published inconsistently: such a row never drives an error."""
        return not any(flag in INCONSISTENT for flag in self.flags)

    @property
    def problems(self) -> list[str]:
        return [FLAG_TEXT[f] for f in self.flags]


@dataclass(frozen=True)
class MueLimit:
    """A Medically Unlikely Edit: at most `units` a line (MAI 1) or a date of service (MAI 2, 3)."""

    setting: str  # practitioner or outpatient_hospital
    units: int
    mai: int  # MUE adjudication indicator: 1 line edit, 2 date of service (policy), 3 date of service (clinical)
    rationale: str
    quarter: QuarterUsed


@dataclass(frozen=True)
class DrugReference:
    """What CMS's files say about one HCPCS code on one date of service."""

    code: str
    date_of_service: dt.date
    descriptor: str | None  # the HCPCS file's long descriptor
    dosage: str | None  # the billing unit as CMS writes it ("10 MG"): ASP pricing, else the crosswalk,
    # else the end of the HCPCS descriptor ("Injection, cangrelor, 1 mg": C-codes are in no ASP file)
    dosage_source: str | None  # which of the three: "ASP pricing", "ASP crosswalk", "HCPCS descriptor"
    billing_unit: Dosage | None  # the dosage parsed, where it is one amount of one unit
    payment_limit: Decimal | None  # per billing unit (ASP pricing)
    items: tuple[CrosswalkItem, ...]  # the NDCs crosswalked to the code
    opps_status: str | None  # OPPS status indicator (K separately paid, N packaged, G pass-through, ...)
    opps_apc: str | None
    mue: dict[str, MueLimit] = field(default_factory=dict)  # by setting
    quarters: tuple[QuarterUsed, ...] = ()

    @property
    def is_drug(self) -> bool:
        """A drug in CMS's files: in the quarter's ASP files, or paid as a drug under OPPS (status
        K, separately payable drug; G, pass-through drug), as the C9 codes are."""
        return bool(self.items) or self.dosage_source in ("ASP pricing", "ASP crosswalk") or \
            self.opps_status in ("K", "G")

    @property
    def outside(self) -> tuple[QuarterUsed, ...]:
        """The files used although the date of service is outside their dates (warn, naming them)."""
        return tuple(q for q in self.quarters if q.outside)

    @property
    def item_sizes(self) -> tuple[Decimal, ...]:
        """The billing units one item holds, over the consistent crosswalk rows (one per item size)."""
        return tuple(sorted({i.billing_units_per_item for i in self.items
                             if i.consistent and i.billing_units_per_item is not None}))


class _Table:
    """One source's lines, indexed by code (and by NDC for the crosswalk). A line is parsed only when
    looked up: indexing needs only its first fields, so reading a table stays cheap (a few ms)."""

    def __init__(self, info: SourceInfo, lines: list[str] | None = None) -> None:
        self.info = info
        self.columns = COLUMNS[info.kind]
        self._by_code: dict[str, list[str]] = defaultdict(list)
        self._by_ndc: dict[str, list[str]] | None = None  # built on the first NDC lookup
        for line in read_lines(info) if lines is None else lines:
            self._by_code[line.split(",", 1)[0]].append(line)  # a HCPCS code is never quoted

    def _ndc_index(self) -> dict[str, list[str]]:
        if self._by_ndc is None:
            self._by_ndc = defaultdict(list)
            for lines in self._by_code.values():
                for line in lines:
                    if (digits := ndc11(ndc_of_line(line))) is not None:
                        self._by_ndc[digits].append(line)
        return self._by_ndc

    def _parse(self, lines: list[str]) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row, strict=True)) for row in csv.reader(lines)]

    def code(self, code: str) -> list[dict[str, str]]:
        return self._parse(self._by_code.get(code, []))

    def ndc(self, digits: str) -> list[dict[str, str]]:
        return self._parse(self._ndc_index().get(digits, []))

    def codes(self) -> list[str]:
        return list(self._by_code)


class ReferenceData:
    """The shipped store with the site stores on top (a later store's file wins for its kind and quarter)."""

    def __init__(self, stores: list[Path] | tuple[Path, ...] = (), *, builtin: Path | None = BUILTIN_STORE,
                 use_cache: bool = True) -> None:
        self.stores = ([builtin] if builtin is not None else []) + [Path(s) for s in stores]
        self.use_cache = use_cache  # look rows up in the per-user cache (cache.py), else index tables in memory
        self._sources: list[SourceInfo] | None = None
        self._tables: dict[str, _Table | CachedTable] = {}  # for lookups, by table file
        self._whole: dict[str, _Table] = {}  # read whole, for `data check`

    @classmethod
    def open(cls, stores: list[Path] | tuple[Path, ...] = (), *, use_env: bool = True) -> ReferenceData:
        """The shipped store, then $SCRUBBER_DATA's stores (with `use_env`), then `stores`."""
        from_env = [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p] if use_env else []
        return cls([*from_env, *stores])

    @property
    def sources(self) -> list[SourceInfo]:
        """Every file in effect, one per kind, setting and quarter, in kind and date order."""
        if self._sources is None:
            merged: dict[tuple[str, str, str], SourceInfo] = {}
            for store in self.stores:
                for info in read_manifest(store):
                    merged[info.key] = info
            self._sources = sorted(merged.values(), key=lambda i: (i.kind, i.setting, i.effective_from))
        return self._sources

    def quarters(self) -> dict[str, list[SourceInfo]]:
        """The sources by title ("ASP pricing": [...]), for --version and `data list`."""
        grouped: dict[str, list[SourceInfo]] = defaultdict(list)
        for info in self.sources:
            grouped[info.title].append(info)
        return dict(grouped)

    def summary(self) -> list[str]:
        """The quarters loaded, kind by kind, for `scrubber --version`."""
        try:
            grouped = self.quarters()
        except ReferenceDataError as exc:
            return [f"reference data: unreadable ({exc})"]
        sites = "".join(f" + {s}" for s in self.stores[1:])
        return [f"reference data (CMS): built-in{sites}",
                *(f"  {title}: {', '.join(i.quarter for i in infos)}" for title, infos in grouped.items())]

    def _table(self, info: SourceInfo) -> _Table | CachedTable:
        """The table a lookup reads: its cache file, or the table indexed in memory."""
        key = str(info.store / info.file)
        if key not in self._tables:
            self._tables[key] = self._whole.get(key) or _open_indexed(info, self.use_cache)
        return self._tables[key]

    def _whole_table(self, info: SourceInfo) -> _Table:
        """The table read whole from the store, checked against its digest (never from the cache)."""
        key = str(info.store / info.file)
        if key not in self._whole:
            self._whole[key] = _Table(info)
        return self._whole[key]

    def in_effect(self, kind: str, day: dt.date, setting: str = "") -> QuarterUsed | None:
        """The file of `kind` in effect on `day`, or the nearest one, flagged as outside."""
        info = self._source_for(kind, day, setting)
        if info is None:
            return None
        outside = not (info.effective_from <= day <= info.effective_to)
        return QuarterUsed(kind, setting, info.quarter, info.effective_from, info.effective_to, outside, info.source)

    def _source_for(self, kind: str, day: dt.date, setting: str = "") -> SourceInfo | None:
        candidates = [i for i in self.sources if i.kind == kind and i.setting == setting]
        if not candidates:
            return None
        covering = [i for i in candidates if i.effective_from <= day <= i.effective_to]
        if covering:
            return covering[-1]
        before = [i for i in candidates if i.effective_from <= day]
        return before[-1] if before else candidates[0]

    def _rows(self, kind: str, code: str, day: dt.date,
              setting: str = "") -> tuple[list[dict[str, str]], QuarterUsed | None]:
        info = self._source_for(kind, day, setting)
        if info is None:
            return [], None
        return self._table(info).code(code), self.in_effect(kind, day, setting)

    def drug(self, code: str, date_of_service: dt.date) -> DrugReference | None:
        """What the files in effect on the date say about `code`; None when no file names it."""
        code = code.strip().upper()
        used: list[QuarterUsed] = []
        hcpcs, quarter = self._rows("hcpcs", code, date_of_service)
        used += [quarter] if quarter and hcpcs else []
        pricing, quarter = self._rows("asp_pricing", code, date_of_service)
        used += [quarter] if quarter and pricing else []
        crosswalk, quarter = self._rows("asp_crosswalk", code, date_of_service)
        used += [quarter] if quarter and crosswalk else []
        items = tuple(_item(row, quarter.quarter) for row in crosswalk) if quarter else ()
        opps, quarter = self._rows("opps_addendum_b", code, date_of_service)
        used += [quarter] if quarter and opps else []
        limits = {}
        for setting in ("practitioner", "outpatient_hospital"):
            mue, quarter = self._rows("mue", code, date_of_service, setting)
            if mue and quarter:
                used.append(quarter)
                row = mue[0]
                limits[setting] = MueLimit(setting, int(row["mue"]), int(row["mai"]), row["rationale"], quarter)
        if not (hcpcs or pricing or crosswalk or opps or limits):
            return None
        candidates = [("ASP pricing", pricing[0]["dosage"] if pricing else ""),
                      ("ASP crosswalk", crosswalk[0]["dosage"] if crosswalk else ""),
                      ("HCPCS descriptor", _descriptor_dosage(hcpcs[0]["long_description"]) if hcpcs else "")]
        dosage_source, dosage = next(((where, text) for where, text in candidates if text), (None, None))
        return DrugReference(
            code=code,
            date_of_service=date_of_service,
            descriptor=hcpcs[0]["long_description"] if hcpcs else None,
            dosage=dosage,
            dosage_source=dosage_source,
            billing_unit=parse_dosage(dosage),
            payment_limit=to_decimal(pricing[0]["payment_limit"]) if pricing else None,
            items=items,
            opps_status=opps[0]["status_indicator"] if opps else None,
            opps_apc=(opps[0]["apc"] or None) if opps else None,
            mue=limits,
            quarters=tuple(used),
        )

    def codes_for_ndc(self, ndc: str, date_of_service: dt.date) -> tuple[CrosswalkItem, ...]:
        """The crosswalk rows of the NDC in the quarter in effect (one per code it is crosswalked to)."""
        digits = ndc11(ndc)
        info = self._source_for("asp_crosswalk", date_of_service)
        if digits is None or info is None:
            return ()
        return tuple(_item(row, info.quarter) for row in self._table(info).ndc(digits))

    def crosswalk_quarter(self, date_of_service: dt.date) -> QuarterUsed | None:
        return self.in_effect("asp_crosswalk", date_of_service)

    def flagged_rows(self, flags: tuple[str, ...] = INCONSISTENT) -> list[tuple[SourceInfo, CrosswalkItem]]:
        """Every crosswalk row carrying one of `flags`, in every quarter (`scrubber data check`)."""
        found = []
        for info in self.sources:
            if info.kind == "asp_crosswalk":
                table = self._whole_table(info)
                for code in table.codes():
                    items = [_item(row, info.quarter) for row in table.code(code) if row["flags"]]
                    found += [(info, item) for item in items if set(item.flags) & set(flags)]
        return found

    def verify(self) -> list[SourceInfo]:
        """Read every table once, checking it against its digest; returns the sources checked."""
        for info in self.sources:
            self._whole_table(info)
        return self.sources


def _open_indexed(info: SourceInfo, use_cache: bool) -> _Table | CachedTable:
    if not use_cache:
        return _Table(info)
    cached, lines = open_table(info)
    return cached if cached is not None else _Table(info, lines)


def _descriptor_dosage(descriptor: str) -> str:
    """The billing unit a HCPCS descriptor ends with ("Injection, cangrelor, 1 mg"), or ""."""
    last = descriptor.rsplit(",", 1)[-1].strip() if "," in descriptor else ""
    return last if parse_dosage(last) is not None else ""


def _item(row: dict[str, str], quarter: str) -> CrosswalkItem:
    return CrosswalkItem(
        hcpcs=row["hcpcs"], ndc=row["ndc"], labeler=row["labeler"], drug_name=row["drug_name"], dosage=row["dosage"],
        package_size=row["pkg_size"], package_quantity=to_decimal(row["pkg_qty"]),
        billing_units_per_item=to_decimal(row["billunits"]), billing_units_per_package=to_decimal(row["billunitspkg"]),
        flags=tuple(f for f in row["flags"].split(";") if f), quarter=quarter,
    )
