"""Read CMS's files as CMS publishes them (cp1252 or UTF-8, CRLF, preamble lines, the zip they come in).

Each file is recognised by its header row, not its name, and its columns are checked; the effective
dates come from the file itself where it states them (the ASP files' "Effective ... through ..."
line, the HCPCS file's action dates). Addendum B states only its calendar year and the MUE tables no
date at all: their quarter comes from the file name as CMS names it, or from `effective` (the
`--effective` option). A file that cannot be read raises one ReferenceDataError naming it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from .columns import COLUMNS, FLAG_TEXT, IMPLAUSIBLE_BILLUNITS, INCONSISTENT, KINDS, SETTINGS, to_decimal
from .errors import ReferenceDataError
from .quarters import MONTHS, quarter_end, quarter_start
from .workbook import fixed_width_rows, is_workbook, workbook_rows

__all__ = ["COLUMNS", "FLAG_TEXT", "INCONSISTENT", "KINDS", "SETTINGS", "ParsedSource", "crosswalk_flags", "read_csv",
           "read_files", "read_text", "read_workbook", "to_decimal"]

_CODE = re.compile(r"^[A-Z0-9]{4}[A-Z0-9]$")
_LEVEL_II = re.compile(r"^[A-CE-V]\d{4}$")  # not CPT (digits first) and not CDT (D codes, the ADA's)
_NDC_542 = re.compile(r"^\d{5}-\d{4}-\d{2}$")
_EFFECTIVE = re.compile(r"Effective\s+(\w+)\s+(\d{1,2}),\s*(\d{4})\s+through\s+(\w+)\s+(\d{1,2}),\s*(\d{4})", re.I)
_ADDENDUM_B = re.compile(r"Addendum B\.?-*\s*OPPS Payment by HCPCS Code for CY\s*(\d{4})", re.I)
_NAME_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_NAME_US_DATE = re.compile(r"(\d{2})[-_](\d{2})[-_](\d{4})")
_NAME_MONTH = re.compile(r"(Jan|Apr|Jul|Oct)[a-z]*[ _-]?((?:19|20)\d{2})", re.I)

# CMS rounds BILLUNITSPKG to whole units (2.5 x 25 = 62.5 is published as 63): within half a unit,
# BILLUNITS x PKG QTY and BILLUNITSPKG agree.
ROUNDING = Decimal("0.5")


@dataclass
class ParsedSource:
    """One CMS file, read: what it is, the dates it covers, and the rows the store keeps."""

    kind: str
    setting: str  # MUE only: practitioner or outpatient_hospital
    effective_from: dt.date
    effective_to: dt.date
    source: str  # the file's name as imported (for a zip member, zip!member)
    digest: str  # sha256 of the file's bytes as published
    rows: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        """Two files with the same key are two releases of one quarter's data: the later import wins."""
        return (self.kind, self.setting, self.effective_from.isoformat())


def read_files(paths: list[Path], effective: dt.date | None = None) -> tuple[list[ParsedSource], list[str]]:
    """Read every file (a CSV, an Excel workbook, the HCPCS fixed-width text, or a zip of them).
    Returns the sources and the notes on zip members skipped; raises ReferenceDataError on the first
    file that cannot be read."""
    sources: list[ParsedSource] = []
    skipped: list[str] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReferenceDataError(str(path), f"cannot be read ({exc.strerror or exc})") from None
        if data.startswith(b"PK\x03\x04"):
            found, notes = _read_zip(path, data, effective)
            sources += found
            skipped += notes
        else:
            sources.append(read_text(path.name, data, effective, shown_as=str(path)))
    return sources, skipped


# The forms a CMS zip holds its tables in, in the order they are preferred: the HCPCS zip holds the
# workbook and the fixed-width text (some quarters a CSV too), the same data each time.
_FORMS = (("CSV", (".csv",)), ("workbook", (".xlsx",)), ("fixed-width text", (".txt",)))


def _read_zip(path: Path, data: bytes, effective: dt.date | None) -> tuple[list[ParsedSource], list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReferenceDataError(str(path), f"not a readable zip file ({exc})") from None
    if is_workbook(names):
        return [read_workbook(path.name, data, effective, shown_as=str(path))], []
    found: list[ParsedSource] = []
    skipped: list[str] = []
    members = [n for n in names if not n.endswith("/")]
    used = None
    for form, suffixes in _FORMS:
        chosen = [n for n in members if n.lower().endswith(suffixes)]
        if used is not None:
            skipped += [f"{path}!{n}: skipped, the zip's {used} members were read" for n in chosen]
            continue
        for name in chosen:
            try:
                member = archive.read(name)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise ReferenceDataError(f"{path}!{name}", f"cannot be extracted ({exc})") from None
            stored, shown = f"{path.name}!{Path(name).name}", f"{path}!{name}"
            try:
                if form == "workbook":
                    found.append(read_workbook(stored, member, effective, shown_as=shown))
                else:
                    found.append(read_text(stored, member, effective, shown_as=shown))
            except _Unrecognised as exc:
                # CMS's zips carry other tables too (NOC pricing, record layouts, read-me files): only ours are read.
                skipped.append(f"{shown}: {exc.problem}, skipped")
        if found:
            used = form
    skipped += [f"{path}!{n}: not a CSV, workbook or text file, skipped" for n in members
                if not n.lower().endswith((".csv", ".xlsx", ".txt"))]
    if not found:
        raise ReferenceDataError(str(path), "holds no CMS file the scrubber reads (" + "; ".join(skipped) + ")")
    return found, skipped


Rows = list[list[str]]
Header = dict[str, int]  # column name -> index
# A reader: (shown name, stored name, preamble, header, data rows, --effective) -> ParsedSource
Reader = Callable[[str, str, Rows, Header, Rows, "dt.date | None"], ParsedSource]


class _Unrecognised(ReferenceDataError):
    """The file is text, but none of the CMS files the scrubber reads."""


def _decode(shown_as: str, data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise _Unrecognised(shown_as, "not a CSV file (binary content)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # CMS's own CSVs are Windows-1252; five of its byte values are unassigned there.
        return data.decode("cp1252", errors="strict") if _is_cp1252(data) else data.decode("latin-1")


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def read_csv(name: str, data: bytes, effective: dt.date | None = None, *, shown_as: str | None = None) -> ParsedSource:
    """Read one CMS CSV file, recognised by its content."""
    shown = shown_as or name
    text = _decode(shown, data)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ReferenceDataError(shown, f"not a readable CSV file ({exc})") from None
    return _read_rows(shown, name, data, rows, effective)


def read_text(name: str, data: bytes, effective: dt.date | None = None, *, shown_as: str | None = None,
              ) -> ParsedSource:
    """Read one CMS text file: a CSV, or else the HCPCS file's fixed-width text."""
    try:
        return read_csv(name, data, effective, shown_as=shown_as)
    except _Unrecognised as not_csv:
        rows = fixed_width_rows(_decode(shown_as or name, data))
        if rows is None:
            raise _Unrecognised(not_csv.path, not_csv.problem + ", nor the HCPCS file's fixed-width text") from None
        return _read_rows(shown_as or name, name, data, rows, effective)


def read_workbook(name: str, data: bytes, effective: dt.date | None = None, *,
                  shown_as: str | None = None) -> ParsedSource:
    """Read one CMS file published as an Excel workbook (its first sheet), recognised by its content."""
    shown = shown_as or name
    return _read_rows(shown, name, data, workbook_rows(shown, data), effective)


def _read_rows(shown: str, name: str, data: bytes, rows: list[list[str]], effective: dt.date | None,
               ) -> ParsedSource:
    for index, row in enumerate(rows[:40]):
        # CMS breaks some header cells over lines ("HCPCS/\nCPT Code" in the MUE tables).
        cells = [re.sub(r"\s+", " ", c).strip().replace("/ ", "/") for c in row]
        reader = _recognise(cells)
        if reader is not None:
            header = {c: i for i, c in enumerate(cells) if c}
            digest = hashlib.sha256(data).hexdigest()
            source = reader(shown, name, rows[:index], header, rows[index + 1 :], effective)
            source.digest = digest
            if not source.rows:
                raise ReferenceDataError(shown, f"a {KINDS[source.kind]} without a single row")
            return source
    raise _Unrecognised(shown, "not a CMS file the scrubber reads (no header row of an ASP crosswalk, ASP pricing "
                               "file, HCPCS file, OPPS Addendum B or MUE table in its first 40 lines)")


def _recognise(cells: list[str]) -> Reader | None:
    if cells and re.fullmatch(r"_\d{4}_CODE", cells[0]) and "NDC2" in cells:
        return _read_crosswalk
    if "HCPCS Code" in cells and "Payment Limit" in cells:
        return _read_pricing
    if "HCPC" in cells and "RECID" in cells:
        return _read_hcpcs
    if "HCPCS Code" in cells and "SI" in cells:
        return _read_addendum_b
    if cells and cells[0] == "HCPCS/CPT Code" and any(c.endswith("MUE Values") for c in cells):
        return _read_mue
    return None


def _require(shown: str, kind: str, header: dict[str, int], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise ReferenceDataError(shown, f"looks like a {KINDS[kind]} but lacks the column(s) {', '.join(missing)}")


def _records(shown: str, header_line: int, header: dict[str, int], code_column: str, rows: list[list[str]]):
    """The data rows as dicts of stripped cells, with their line numbers. Blank rows and footnote
    rows (one cell filled) are skipped; a filled row whose code is not a HCPCS code is refused."""
    width = max(header.values()) + 1
    for offset, row in enumerate(rows):
        cells = [_clean(c) for c in row] + [""] * max(0, width - len(row))
        filled = sum(1 for c in cells if c)
        if filled == 0:
            continue
        code = cells[header[code_column]].upper()
        if not _CODE.match(code):
            if filled <= 1 or cells[header[code_column]] == code_column:  # a footnote, or the header repeated
                continue
            line = header_line + 2 + offset
            raise ReferenceDataError(shown, f"row {line}: {code_column} {cells[header[code_column]]!r} is not a "
                                            "HCPCS code")
        yield {name: cells[i] for name, i in header.items()} | {code_column: code}


def _clean(cell: str) -> str:
    # CMS's Addendum B files carry a stray character after a few codes ("A4341" + 0xFF in cp1252,
    # U+FFFD in the UTF-8 January 2024 release): an artefact of CMS's conversion, not part of the code.
    return cell.strip().strip("\ufffd\xff").strip()


def _stated_dates(shown: str, preamble: list[list[str]]) -> tuple[dt.date, dt.date]:
    for row in preamble:
        for cell in row:
            match = _EFFECTIVE.search(cell)
            if match:
                try:
                    start = _month_day(match[1], match[2], match[3])
                    end = _month_day(match[4], match[5], match[6])
                except ValueError:
                    break
                if end < start:
                    break
                return start, end
    raise ReferenceDataError(shown, 'no "Effective <date> through <date>" line in its preamble, as CMS\'s ASP files '
                                    "carry: cannot tell which quarter it is")


def _month_day(month: str, day: str, year: str) -> dt.date:
    names = [m.lower() for m in MONTHS]
    return dt.date(int(year), names.index(month.lower()) + 1, int(day))


def _check_effective(shown: str, stated: dt.date, effective: dt.date | None) -> None:
    if effective is not None and quarter_start(effective) != quarter_start(stated):
        raise ReferenceDataError(shown, f"the file says it is effective from {stated.isoformat()}, "
                                        f"but --effective says {effective.isoformat()}")


def crosswalk_flags(ndc: str, billunits: str, pkg_qty: str, billunitspkg: str) -> tuple[str, ...]:
    """Why a crosswalk row cannot be trusted, if it cannot: CMS publishes some rows inconsistently."""
    flags = []
    if not _NDC_542.match(ndc):
        flags.append("not-an-ndc")
    per_item, quantity, per_package = to_decimal(billunits), to_decimal(pkg_qty), to_decimal(billunitspkg)
    if per_item is None or quantity is None or per_package is None or min(per_item, quantity, per_package) <= 0:
        flags.append("unreadable")
        return tuple(flags)
    if abs(per_item * quantity - per_package) > ROUNDING:
        flags.append("arithmetic")
    if per_item <= IMPLAUSIBLE_BILLUNITS:
        flags.append("implausible")
    return tuple(flags)


def _read_crosswalk(shown: str, name: str, preamble: Rows, header: Header, rows: Rows,
           effective: dt.date | None) -> ParsedSource:
    code_column = next(c for c in header if re.fullmatch(r"_\d{4}_CODE", c))
    needed = ("LABELER NAME", "NDC2", "Drug Name", "HCPCS dosage", "PKG SIZE", "PKG QTY", "BILLUNITS", "BILLUNITSPKG")
    _require(shown, "asp_crosswalk", header, needed)
    start, end = _stated_dates(shown, preamble)
    _check_effective(shown, start, effective)
    source = ParsedSource("asp_crosswalk", "", start, end, name, "")
    for record in _records(shown, len(preamble), header, code_column, rows):
        values = [record[c] for c in needed]
        labeler, ndc, drug, dosage, size, quantity, per_item, per_package = values
        flags = crosswalk_flags(ndc, per_item, quantity, per_package)
        source.rows.append((record[code_column], ndc, labeler, drug, dosage, size, quantity, per_item, per_package,
                            ";".join(flags)))
    return source


def _read_pricing(shown: str, name: str, preamble: Rows, header: Header, rows: Rows,
           effective: dt.date | None) -> ParsedSource:
    needed = ("HCPCS Code", "Short Description", "HCPCS Code Dosage", "Payment Limit")
    _require(shown, "asp_pricing", header, needed)
    start, end = _stated_dates(shown, preamble)
    _check_effective(shown, start, effective)
    source = ParsedSource("asp_pricing", "", start, end, name, "")
    for record in _records(shown, len(preamble), header, "HCPCS Code", rows):
        limit = record["Payment Limit"]
        if limit.upper() not in ("", "N/A") and to_decimal(limit) is None:  # N/A: priced otherwise (AWP)
            raise ReferenceDataError(shown, f"{record['HCPCS Code']}: Payment Limit {limit!r} is not a number")
        source.rows.append(tuple(record[c] for c in needed))
    return source


def _yyyymmdd(shown: str, code: str, column: str, value: str) -> str:
    if not value:
        return ""
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date().isoformat()
    except ValueError:
        raise ReferenceDataError(shown, f"{code}: {column} {value!r} is not a date (YYYYMMDD)") from None


def _read_hcpcs(shown: str, name: str, preamble: Rows, header: Header, rows: Rows,
           effective: dt.date | None) -> ParsedSource:
    needed = ("HCPC", "RECID", "LONG DESCRIPTION", "SHORT DESCRIPTION", "ADD DT", "ACT EFF DT", "TERM DT", "ACTION CD")
    _require(shown, "hcpcs", header, needed)
    records: dict[str, list[str]] = {}
    latest = ""
    for record in _records_hcpcs(shown, header, rows):
        code = record["HCPC"]
        if record["RECID"] == "4" and code in records:  # a continuation line of the long descriptor
            records[code][2] = f"{records[code][2]} {record['LONG DESCRIPTION']}".strip()
            continue
        if record["RECID"] != "3":  # 7 is a modifier: read from rules/modifiers.toml, not here
            continue
        dates = [_yyyymmdd(shown, code, c, record[c]) for c in ("ADD DT", "ACT EFF DT", "TERM DT")]
        latest = max(latest, dates[1])
        records[code] = [code, record["SHORT DESCRIPTION"], record["LONG DESCRIPTION"], *dates, record["ACTION CD"]]
    if not latest:
        raise ReferenceDataError(shown, "a HCPCS file without a single code (RECID 3) and its action date")
    # The release is the quarter of its latest action: the October 2025 file's newest codes take
    # effect on 2025-10-01.
    start = quarter_start(dt.date.fromisoformat(latest))
    _check_effective(shown, start, effective)
    source = ParsedSource("hcpcs", "", start, quarter_end(start), name, "")
    source.rows = [tuple(r) for r in records.values()]
    return source


def _records_hcpcs(shown: str, header: dict[str, int], rows: list[list[str]]):
    # The HCPCS file's code column also holds two-character modifiers: the code check is RECID's.
    width = max(header.values()) + 1
    for row in rows:
        cells = [c.strip() for c in row] + [""] * max(0, width - len(row))
        if any(cells):
            yield {name: cells[i] for name, i in header.items()}


def _date_from_name(shown: str, name: str, kind: str, effective: dt.date | None, year: int | None = None) -> dt.date:
    base = Path(name.split("!")[-1]).stem
    named = None
    if match := _NAME_ISO_DATE.search(base):
        named = dt.date(int(match[1]), int(match[2]), int(match[3]))
    elif match := _NAME_US_DATE.search(base):
        named = dt.date(int(match[3]), int(match[1]), int(match[2]))
    elif match := _NAME_MONTH.search(base):
        named = _month_day({"jan": "January", "apr": "April", "jul": "July", "oct": "October"}[match[1].lower()],
                           "1", match[2])
    if effective is not None:
        if named is not None and quarter_start(named) != quarter_start(effective):
            raise ReferenceDataError(shown, f"its name says {named.isoformat()}, but --effective says "
                                            f"{effective.isoformat()}")
        named = effective
    if named is None:
        what = f"only its calendar year (CY {year})" if year else "no date"
        raise ReferenceDataError(shown, f"a {KINDS[kind]} states {what}, and its name none: give the quarter with "
                                        "--effective YYYY-MM-DD")
    if year is not None and named.year != year:
        raise ReferenceDataError(shown, f"a {KINDS[kind]} for CY {year}, dated {named.isoformat()} by its name "
                                        "or --effective")
    return quarter_start(named)


def _read_addendum_b(shown: str, name: str, preamble: Rows, header: Header, rows: Rows,
           effective: dt.date | None) -> ParsedSource:
    _require(shown, "opps_addendum_b", header, ("HCPCS Code", "SI", "APC", "Payment Rate"))
    expiry = next((c for c in header if c.startswith("Drug and Device Pass-Through Expiration")), None)
    year = next((int(m[1]) for row in preamble for cell in row if (m := _ADDENDUM_B.search(cell))), None)
    if year is None:
        raise ReferenceDataError(shown, 'no "Addendum B ... OPPS Payment by HCPCS Code for CY <year>" title line')
    start = _date_from_name(shown, name, "opps_addendum_b", effective, year)
    source = ParsedSource("opps_addendum_b", "", start, quarter_end(start), name, "")
    for record in _records(shown, len(preamble), header, "HCPCS Code", rows):
        code = record["HCPCS Code"]
        if not _LEVEL_II.match(code):  # CPT and CDT rows stay out of the store (AMA's and ADA's)
            continue
        rate = record["Payment Rate"]
        source.rows.append((code, record["SI"], record["APC"], rate if to_decimal(rate) is not None else "",
                            record[expiry] if expiry else ""))
    return source


def _read_mue(shown: str, name: str, preamble: Rows, header: Header, rows: Rows,
           effective: dt.date | None) -> ParsedSource:
    values = next(c for c in header if c.endswith("MUE Values"))
    setting = {"Practitioner Services MUE Values": "practitioner",
               "Outpatient Hospital Services MUE Values": "outpatient_hospital"}.get(values)
    if setting is None:
        raise _Unrecognised(shown, f"an MUE table for another setting ({values!r}): the scrubber reads the "
                                   "practitioner and outpatient hospital tables")
    _require(shown, "mue", header, ("MUE Adjudication Indicator", "MUE Rationale"))
    start = _date_from_name(shown, name, "mue", effective)
    source = ParsedSource("mue", setting, start, quarter_end(start), name, "")
    for record in _records(shown, len(preamble), header, "HCPCS/CPT Code", rows):
        code, value, indicator = record["HCPCS/CPT Code"], record[values], record["MUE Adjudication Indicator"]
        if not value.isdigit():
            raise ReferenceDataError(shown, f"{code}: {values} {value!r} is not a whole number")
        if indicator[:1] not in ("1", "2", "3"):
            raise ReferenceDataError(shown, f"{code}: MUE Adjudication Indicator {indicator!r} is not 1, 2 or 3")
        source.rows.append((code, value, indicator[:1], record["MUE Rationale"]))
    return source
