"""`scrubber data import | list | check` and `--version`: the store kept by a command."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner
from conftest import ROOT
from test_refdata import CMS, crosswalk_bytes, needs_cms

from scrubber.cli import cli
from scrubber.refdata import BUILTIN_STORE, read_manifest
from scrubber.refdata.store import read_table

# The October 2025 files as CMS published them (the crosswalk: CMS's exact file in quarters/).
OCTOBER_2025 = [
    CMS / "HCPC2025_OCT_ANWEB.csv",
    CMS / "quarters" / "Oct2025_ASP_NDC-HCPCS_crosswalk.csv",
    CMS / "Oct2025_ASP_pricing.csv",
    CMS / "quarters" / "OPPS_AddendumB_Oct2025.csv",
    CMS / "MUE_OutpatientHospital_2026-10-01_drugs_excerpt.csv",
]
BELINOSTAT = "J9032,Injection belinostat 10mg,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env={"SCRUBBER_DATA": "", **(env or {})})


@needs_cms
def test_importing_the_october_2025_files_gives_the_store_the_package_ships(tmp_path):
    store = tmp_path / "store"
    done = subprocess.run([sys.executable, "-m", "scrubber", "data", "import", "--from-scratch", "--data", str(store),
                           *map(str, OCTOBER_2025)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ("ASP NDC-HCPCS crosswalk, October 2025 (2025-10-01 to 2025-12-31): 8245 rows, 122 inconsistent"
            in done.stdout)
    imported = read_manifest(store)
    shipped = {info.key: info for info in read_manifest(BUILTIN_STORE)}
    assert len(imported) == 5
    for info in imported:
        ship = shipped[info.key]
        assert (info.digest, info.content_digest, info.rows, info.flagged, info.source) == (
            ship.digest, ship.content_digest, ship.rows, ship.flagged, ship.source), info.key
        # The digests are recorded at import: compare the tables themselves too.
        assert read_table(info) == read_table(ship)
        assert (store / info.file).read_bytes() == (BUILTIN_STORE / ship.file).read_bytes()


def test_import_needs_a_store_to_write_into(tmp_path):
    result = invoke("data", "import", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "name the store to import into: --data DIR" in result.output


def test_a_file_that_cannot_be_read_stops_the_import_and_nothing_is_written(tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(crosswalk_bytes(BELINOSTAT))
    bad.write_bytes(b"HCPCS Code,Short Description,HCPCS Code Dosage,Payment Limit\r\nJ9032,x,10 MG,cheap\r\n")
    result = invoke("data", "import", "--data", str(tmp_path / "store"), str(good), str(bad))
    assert result.exit_code == 2
    assert f"{bad}: no \"Effective <date> through <date>\" line" in result.output
    assert result.output.count("Error") == 1
    assert not (tmp_path / "store").exists()


def test_a_missing_file_is_refused_with_exit_2(tmp_path):
    result = invoke("data", "import", "--data", str(tmp_path / "store"), str(tmp_path / "nowhere.csv"))
    assert result.exit_code == 2 and "nowhere.csv: cannot be read" in result.output
    assert "Traceback" not in result.output


def test_the_zip_cms_publishes_is_read_member_by_member(tmp_path):
    archive = tmp_path / "april-2026-asp.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("Apr2026 ASP NDC-HCPCS Crosswalk 508.csv", crosswalk_bytes(BELINOSTAT))
        out.writestr("read me.pdf", b"%PDF-1.4")
        out.writestr("NOC pricing.csv", b"Drug Generic Name,Dosage,Payment Limit\r\nx,1 mg,1.00\r\n")
    store = tmp_path / "store"
    result = invoke("data", "import", "--data", str(store), str(archive))
    assert result.exit_code == 0, result.output
    assert "read me.pdf: not a CSV, workbook or text file, skipped" in result.output
    assert "NOC pricing.csv: not a CMS file the scrubber reads" in result.output
    [info] = read_manifest(store)
    assert (info.kind, info.quarter, info.source) == ("asp_crosswalk", "April 2026",
                                                      "april-2026-asp.zip!Apr2026 ASP NDC-HCPCS Crosswalk 508.csv")


def test_a_zip_without_a_cms_file_or_an_unreadable_workbook_is_refused(tmp_path):
    empty = tmp_path / "other.zip"
    with zipfile.ZipFile(empty, "w") as out:
        out.writestr("notes.txt", b"nothing")
    workbook = tmp_path / "crosswalk.xlsx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("[Content_Types].xml", b"<Types/>")
    workbook.write_bytes(buffer.getvalue())
    for path, problem in ((empty, "holds no CMS file the scrubber reads"), (workbook, "not a readable Excel workbook")):
        result = invoke("data", "import", "--data", str(tmp_path / "store"), str(path))
        assert result.exit_code == 2 and f"{path}: {problem}" in result.output


def test_list_shows_file_quarter_dates_rows_digest_source_and_store(tmp_path):
    site = tmp_path / "site"
    source = tmp_path / "Apr2026_ASP_NDC-HCPCS_crosswalk.csv"
    source.write_bytes(crosswalk_bytes(BELINOSTAT))
    assert invoke("data", "import", "--data", str(site), str(source)).exit_code == 0
    result = invoke("data", "list", "--data", str(site))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["file", "quarter", "effective", "rows", "inconsistent", "digest", "source", "store"]
    [october] = [line for line in lines if "Oct2025_ASP_NDC-HCPCS_crosswalk.csv" in line]
    for shown in ("ASP NDC-HCPCS crosswalk", "October 2025", "2025-10-01 to 2025-12-31", " 8245 ", " 122 ",
                  "008b6518b9b9", "built-in"):
        assert shown in october
    [site_line] = [line for line in lines if str(site) in line]
    assert "April 2026" in site_line and "2026-04-01 to 2026-06-30" in site_line and source.name in site_line


def test_check_lists_the_rows_cms_published_inconsistently():
    result = invoke("data", "check", "--quarter", "October 2025")
    assert result.exit_code == 0
    rows = result.stdout.splitlines()
    assert len(rows) == 122
    assert any("J0256 00053-7201-02 Zemaira" in row and "0.1 or less for a whole item" in row for row in rows)
    assert any("J1380 00574-0872-05" in row and "BILLUNITS 5 x PKG QTY 1, BILLUNITSPKG 20" in row for row in rows)
    assert sum(1 for row in rows if ": J" in row) == 94  # 85 arithmetic + 9 implausible
    assert invoke("data", "check", "--quarter", "October 2025", "--flag", "not-an-ndc").stdout.count("\n") == 1284


def test_check_finds_a_damaged_store(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(BUILTIN_STORE, site)
    [table] = site.glob("asp_pricing-2025-10-01-*.csv.gz")
    table.write_bytes(gzip.compress(gzip.decompress(table.read_bytes()).replace(b"52.474", b"5.474")))
    result = invoke("data", "check", "--data", str(site))
    assert result.exit_code == 2 and f"{table}: its content does not match the manifest's digest" in result.output


def test_version_names_the_quarters():
    result = invoke("--version")
    assert result.exit_code == 0
    assert "reference data (CMS): built-in" in result.output
    assert ("ASP NDC-HCPCS crosswalk: January 2024, April 2024, July 2024, October 2024, January 2025, April 2025, "
            "July 2025, October 2025, January 2026") in result.output
    assert "OPPS Addendum B: January 2024, January 2025, July 2025, October 2025" in result.output
    assert "MUE table, outpatient hospital services: October 2026" in result.output


@pytest.mark.parametrize("command", ["import", "list", "check"])
def test_data_commands_are_documented(command):
    assert f"scrubber data {command}" in (ROOT / "README.md").read_text()


def test_a_store_directory_that_does_not_exist_is_an_error_not_ignored(tmp_path):
    result = invoke("data", "list", env={"SCRUBBER_DATA": str(tmp_path / "typo")})
    assert result.exit_code == 2 and f"{tmp_path / 'typo'}: no such reference data store" in result.output


def test_the_cli_starts_without_the_reference_data_and_mirrors_its_names():
    from scrubber.cli import data_commands
    from scrubber.refdata import DATA_ENV
    from scrubber.refdata.sources import FLAG_TEXT, INCONSISTENT

    assert data_commands.DATA_ENV == DATA_ENV
    assert tuple(sorted(FLAG_TEXT)) == data_commands.FLAGS
    assert data_commands.INCONSISTENT == INCONSISTENT
    code = "import sys, scrubber.cli; print('scrubber.refdata' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_cli_starts_without_the_watcher():
    """`scrubber scrub` does not pay for the watcher's modules (30 ms of CPU): they load when
    `scrubber watch` runs."""
    code = "import sys, scrubber.cli; print(sorted(m for m in sys.modules if m.startswith('scrubber.watch')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_from_scratch_leaves_only_the_files_of_this_import(tmp_path):
    store = tmp_path / "store"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(crosswalk_bytes(BELINOSTAT))
    second.write_bytes(crosswalk_bytes(BELINOSTAT).replace(b"April 1, 2026 through June 30, 2026",
                                                           b"July 1, 2026 through September 30, 2026"))
    assert invoke("data", "import", "--data", str(store), str(first)).exit_code == 0
    assert invoke("data", "import", "--data", str(store), str(second)).exit_code == 0
    assert [i.quarter for i in read_manifest(store)] == ["April 2026", "July 2026"]
    assert invoke("data", "import", "--from-scratch", "--data", str(store), str(second)).exit_code == 0
    assert [i.quarter for i in read_manifest(store)] == ["July 2026"]
    assert len(list(store.glob("*.csv.gz"))) == 1
