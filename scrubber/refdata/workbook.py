"""The rows of CMS's files published in other forms than CSV: an Excel workbook (.xlsx) and the HCPCS
file's fixed-width text. Both give rows of cells as the CSV reader does, so one recogniser reads all.

The workbook is read with zipfile and lxml (no spreadsheet library): the first sheet named by
xl/workbook.xml, its cells placed by their references (Excel leaves empty cells out), shared strings
resolved. A number is given as Excel stores it, integral numbers without ".0" (20250101, not
20250101.0), as the CSV that CMS writes out of the same sheet has them.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from decimal import Decimal, InvalidOperation

from lxml import etree

from .errors import ReferenceDataError

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL = re.compile(r"^([A-Z]{1,3})(\d+)$")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def is_workbook(names: list[str]) -> bool:
    """Whether a zip's members are an Office document's (a workbook is a zip of XML parts)."""
    return "[Content_Types].xml" in names


def workbook_rows(shown: str, data: bytes) -> list[list[str]]:
    """The rows of the workbook's first sheet, as lists of cell texts."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        workbook = etree.fromstring(archive.read("xl/workbook.xml"), _PARSER)
        first = workbook.find(f"{_MAIN}sheets/{_MAIN}sheet")
        if first is None:
            raise ReferenceDataError(shown, "a workbook without a sheet")
        sheet_path = _sheet_path(archive, first.get(f"{_REL}id"))
        shared = _shared_strings(archive)
        sheet = etree.fromstring(archive.read(sheet_path), _PARSER)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, etree.XMLSyntaxError) as exc:
        raise ReferenceDataError(shown, f"not a readable Excel workbook ({exc})") from None
    rows: list[list[str]] = []
    for row in sheet.iter(f"{_MAIN}row"):
        cells: dict[int, str] = {}
        for cell in row.iter(f"{_MAIN}c"):
            match = _CELL.match(cell.get("r", ""))
            # Excel always writes references; a cell without one is placed after the last one
            column = max(cells, default=-1) + 1 if match is None else _column_index(match[1])
            cells[column] = _cell_text(shown, cell, shared)
        number = int(row.get("r", "")) if row.get("r", "").isdigit() else len(rows) + 1
        while len(rows) < number - 1:  # rows Excel left out are blank rows
            rows.append([])
        rows.append([cells.get(i, "") for i in range(max(cells, default=-1) + 1)])
    return rows


def _sheet_path(archive: zipfile.ZipFile, relation: str | None) -> str:
    rels = etree.fromstring(archive.read("xl/_rels/workbook.xml.rels"), _PARSER)
    for rel in rels.iter(f"{_PACKAGE_REL}Relationship"):
        if rel.get("Id") == relation:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    raise KeyError(f"no relationship {relation!r} for the first sheet")


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    root = etree.fromstring(archive.read("xl/sharedStrings.xml"), _PARSER)
    # A rich-text string is several runs (<r><t>..</t></r>): its text is theirs joined.
    return ["".join(t.text or "" for t in item.iter(f"{_MAIN}t")) for item in root.iter(f"{_MAIN}si")]


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + (ord(letter) - ord("A") + 1)
    return index - 1


def _cell_text(shown: str, cell: etree._Element, shared: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{_MAIN}t"))
    value = cell.findtext(f"{_MAIN}v") or ""
    if kind == "s":
        try:
            return shared[int(value)]
        except (ValueError, IndexError):
            raise ReferenceDataError(shown, f"cell {cell.get('r')}: shared string {value!r} does not exist") from None
    if kind == "n" and value:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return str(int(number)) if number.is_finite() and number == number.to_integral_value() else value
    return value


# The HCPCS file's fixed-width text, as CMS's record layout describes it (HCPCS Contractor Record,
# 320 characters: "HCPC2024_recordlayout.txt" in CMS's July 2024 Alpha-Numeric HCPCS File zip,
# https://www.cms.gov/files/zip/july-2024-alpha-numeric-hcpcs-file.zip, the same positions as
# HCPCS2016_recordlayout.txt): 1-based, inclusive. RECID 3 (7 for a modifier) is a code's first
# line with its data; 4 (8) continues the long description, 80 characters a line, and stops there.
FIXED_WIDTH = {
    "HCPC": (1, 5),
    "SEQNUM": (6, 10),
    "RECID": (11, 11),
    "LONG DESCRIPTION": (12, 91),
    "SHORT DESCRIPTION": (92, 119),
    "ADD DT": (269, 276),
    "ACT EFF DT": (277, 284),
    "TERM DT": (285, 292),
    "ACTION CD": (293, 293),
}
_RECORD = re.compile(r"^[ A-Z0-9]{5}\d{5}[3478]")


def fixed_width_rows(text: str) -> list[list[str]] | None:
    """The HCPCS fixed-width file as rows under the workbook's header (the columns the store keeps),
    or None when the text is not such a file (every non-blank line a record: code, sequence, RECID)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not all(_RECORD.match(line) for line in lines):
        return None
    header = list(FIXED_WIDTH)
    return [header, *([line[start - 1 : end] for start, end in FIXED_WIDTH.values()] for line in lines)]
