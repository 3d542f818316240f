"""The HCPCS file as CMS publishes it: a zip holding the workbook (.xlsx) and the fixed-width text
(and in some quarters a CSV). Each form is built here from the rows of the shipped CSV (the
October 2025 workbook written out), in CMS's layout, and must give the same store as the CSV."""

from __future__ import annotations

import csv
import io
import zipfile
from xml.sax.saxutils import escape

import pytest
from conftest import ROOT

from scrubber.refdata import ReferenceDataError, add_sources, read_files
from scrubber.refdata.store import read_manifest, read_table
from scrubber.refdata.workbook import FIXED_WIDTH, fixed_width_rows

CMS = ROOT.parent / "shared" / "reference" / "cms"
HCPCS_CSV = CMS / "HCPC2025_OCT_ANWEB.csv"
pytestmark = pytest.mark.skipif(not HCPCS_CSV.is_file(), reason="CMS reference files not at ../shared/reference/cms")


def _rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(HCPCS_CSV.read_text(encoding="utf-8"), newline="")))


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def workbook_bytes(rows: list[list[str]]) -> bytes:
    """An .xlsx as Excel writes one: text in the shared strings, whole numbers (the dates) as numbers,
    empty cells left out, one inline string to cover that form too."""
    shared: dict[str, int] = {}
    sheet_rows = []
    for number, row in enumerate(rows, start=1):
        cells = []
        for index, value in enumerate(row):
            if value == "":
                continue
            ref = f"{_column(index)}{number}"
            if value.isdigit() and not value.startswith("0"):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            elif number == 2 and index == 3:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
            else:
                position = shared.setdefault(value, len(shared))
                cells.append(f'<c r="{ref}" t="s"><v>{position}</v></c>')
        sheet_rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    strings = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in shared)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                            'package/2006/content-types"/>')
        out.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="http://schemas.'
                                        'openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
                                        'name="HCPC2025_OCT_ANWEB" sheetId="1" r:id="rId1"/></sheets></workbook>')
        out.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                     'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                     'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
                     '</Relationships>')
        out.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns="{main}">{strings}</sst>')
        out.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0"?><worksheet xmlns="{main}"><sheetData>'
                                                 f'{"".join(sheet_rows)}</sheetData></worksheet>')
    return buffer.getvalue()


def _wrap(text: str, width: int = 80) -> list[str]:
    """The long descriptor in lines of at most `width`, broken at single spaces."""
    lines = []
    while len(text) > width:
        cut = max(p for p in range(1, width + 1) if text[p] == " " and text[p - 1] != " " and
                  (p + 1 < len(text) and text[p + 1] != " "))
        lines.append(text[:cut])
        text = text[cut + 1 :]
    return [*lines, text]


def fixed_width_bytes(rows: list[list[str]]) -> bytes:
    """The HCPCS fixed-width text, 320 characters a record at CMS's positions (workbook.FIXED_WIDTH),
    the long descriptor continued on RECID 4 (8 for a modifier) lines; cp1252, CRLF."""
    header = {name: index for index, name in enumerate(rows[0])}
    out = []
    for row in rows[1:]:
        first, *more = _wrap(row[header["LONG DESCRIPTION"]])
        record = [" "] * 320
        for name, (start, end) in FIXED_WIDTH.items():
            value = first if name == "LONG DESCRIPTION" else row[header[name]]
            value = value.rjust(5) if name == "HCPC" else value.zfill(5) if name == "SEQNUM" else value
            assert len(value) <= end - start + 1, (row[0], name, value)
            record[start - 1 : start - 1 + len(value)] = value
        out.append("".join(record))
        continuation = {"3": "4", "7": "8"}[row[header["RECID"]]]
        for n, text in enumerate(more, start=2):
            out.append(f"{row[0].rjust(5)}{n:04d}0{continuation}{text}".ljust(91))
    return ("\r\n".join(out) + "\r\n").encode("cp1252")


def _store_of(tmp_path, name, *paths):
    parsed, notes = read_files(list(paths))
    store = tmp_path / name
    add_sources(store, parsed)
    [info] = read_manifest(store)
    return info, read_table(info), notes


@pytest.fixture(scope="module")
def from_csv(tmp_path_factory):
    info, table, _ = _store_of(tmp_path_factory.mktemp("csv"), "store", HCPCS_CSV)
    return info, table


def test_the_workbook_gives_the_store_the_csv_gives(tmp_path, from_csv):
    workbook = tmp_path / "HCPC2025_OCT_ANWEB.xlsx"
    workbook.write_bytes(workbook_bytes(_rows()))
    info, table, _ = _store_of(tmp_path, "store", workbook)
    expected_info, expected = from_csv
    assert table == expected
    assert (info.kind, info.effective_from, info.content_digest) == ("hcpcs", expected_info.effective_from,
                                                                     expected_info.content_digest)


def test_the_fixed_width_text_gives_the_store_the_csv_gives(tmp_path, from_csv):
    text = tmp_path / "HCPC2025_OCT_ANWEB.txt"
    text.write_bytes(fixed_width_bytes(_rows()))
    info, table, _ = _store_of(tmp_path, "store", text)
    assert table == from_csv[1] and info.content_digest == from_csv[0].content_digest
    j9312 = next(r for r in table if r["code"] == "J9312")
    assert j9312["long_description"] == "Injection, rituximab, 10 mg"
    assert any(len(r["long_description"]) > 80 for r in table)  # continuation lines joined


RECORD_LAYOUT = b"  CMS RIF REPORT\r\n       NAME                   LENGTH   BEG  END\r\n"


def test_the_zip_as_cms_publishes_it_reads_the_workbook_and_skips_the_text(tmp_path, from_csv):
    archive = tmp_path / "october-2025-alpha-numeric-hcpcs-file.zip"
    rows = _rows()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("HCPC2025_OCT_ANWEB.xlsx", workbook_bytes(rows))
        out.writestr("HCPC2025_OCT_ANWEB.txt", fixed_width_bytes(rows))
        out.writestr("HCPC2025_recordlayout.txt", RECORD_LAYOUT)
        out.writestr("HCPC2025_OCT_TRANS_ALL.xlsx", workbook_bytes([["HCPCS", "Action"], ["J9312", "N"]]))
        out.writestr("proc_notes_OCT2025.pdf", b"%PDF-1.4")
    info, table, notes = _store_of(tmp_path, "store", archive)
    assert table == from_csv[1]
    assert info.source == f"{archive.name}!HCPC2025_OCT_ANWEB.xlsx"
    assert any("HCPC2025_OCT_TRANS_ALL.xlsx: not a CMS file the scrubber reads" in n for n in notes)
    assert any("HCPC2025_OCT_ANWEB.txt: skipped, the zip's workbook members were read" in n for n in notes)
    assert any("proc_notes_OCT2025.pdf: not a CSV, workbook or text file, skipped" in n for n in notes)


def test_a_zip_with_a_csv_reads_the_csv_and_one_with_only_the_text_reads_the_text(tmp_path, from_csv):
    rows = _rows()
    with_csv, text_only = tmp_path / "with-csv.zip", tmp_path / "text-only.zip"
    with zipfile.ZipFile(with_csv, "w") as out:
        out.writestr("HCPC2025_OCT_ANWEB.xlsx", workbook_bytes(rows))
        out.writestr("HCPC2025_OCT_ANWEB.csv", HCPCS_CSV.read_bytes())
    with zipfile.ZipFile(text_only, "w") as out:
        out.writestr("HCPC2025_recordlayout.txt", RECORD_LAYOUT)
        out.writestr("HCPC2025_OCT_ANWEB.txt", fixed_width_bytes(rows))
    info, table, notes = _store_of(tmp_path, "one", with_csv)
    assert table == from_csv[1] and info.source.endswith("!HCPC2025_OCT_ANWEB.csv")
    assert info.digest == from_csv[0].digest
    assert any("HCPC2025_OCT_ANWEB.xlsx: skipped, the zip's CSV members were read" in n for n in notes)
    info, table, notes = _store_of(tmp_path, "two", text_only)
    assert table == from_csv[1] and info.source.endswith("!HCPC2025_OCT_ANWEB.txt")
    assert any("HCPC2025_recordlayout.txt: " in n and "nor the HCPCS file's fixed-width text" in n for n in notes)


def test_a_text_file_that_is_not_the_fixed_width_hcpcs_file_is_refused(tmp_path):
    assert fixed_width_rows("   A1001007Dressing\r\nnot a record\r\n") is None
    path = tmp_path / "notes.txt"
    path.write_bytes(b"Release notes for October 2025\r\n")
    with pytest.raises(ReferenceDataError, match="nor the HCPCS file's fixed-width text"):
        read_files([path])


def test_a_damaged_workbook_is_refused_with_one_message(tmp_path):
    path = tmp_path / "HCPC2025_OCT_ANWEB.xlsx"
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as out:
        out.writestr("[Content_Types].xml", "<Types/>")
        out.writestr("xl/workbook.xml", "<workbook><sheets>")  # cut short
    path.write_bytes(data.getvalue())
    with pytest.raises(ReferenceDataError, match=r"HCPC2025_OCT_ANWEB.xlsx: not a readable Excel workbook"):
        read_files([path])


@pytest.mark.parametrize("name", sorted(p.name for p in CMS.glob("*.csv")) if CMS.is_dir() else [])
def test_every_cms_file_at_hand_reads_the_same_as_a_workbook(tmp_path, name):
    """CMS publishes its other tables as workbooks too (the MUE tables, the ASP files' .xlsx): the
    same sheet gives the same rows, preamble lines and all."""
    source = CMS / name
    [from_csv], _ = read_files([source])
    text = source.read_bytes().decode("utf-8-sig") if _is_utf8(source) else source.read_bytes().decode("cp1252")
    workbook = tmp_path / (source.stem + ".xlsx")
    workbook.write_bytes(workbook_bytes(list(csv.reader(io.StringIO(text, newline="")))))
    [from_workbook], _ = read_files([workbook])
    assert (from_workbook.kind, from_workbook.setting, from_workbook.effective_from, from_workbook.effective_to) == (
        from_csv.kind, from_csv.setting, from_csv.effective_from, from_csv.effective_to)
    assert from_workbook.rows == from_csv.rows


def _is_utf8(path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
