"""The reference data store: CMS's files read as published, quarters side by side, the lookup API,
and the rows CMS published inconsistently. Real rows from the shipped store (built from
../shared/reference/cms by tools/build_refdata.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import pathlib
import re
import shutil
from decimal import Decimal

import pytest
from conftest import ROOT

import scrubber
from scrubber.refdata import (
    BUILTIN_STORE,
    Dosage,
    ReferenceData,
    ReferenceDataError,
    add_sources,
    ndc11,
    parse_dosage,
    read_files,
    read_manifest,
)
from scrubber.refdata.sources import crosswalk_flags, read_csv
from scrubber.refdata.store import read_table, render_table

CMS = ROOT.parent / "shared" / "reference" / "cms"
needs_cms = pytest.mark.skipif(not CMS.is_dir(), reason="CMS reference files not at ../shared/reference/cms")
NOV_2025 = dt.date(2025, 11, 3)  # in the October 2025 quarter


@pytest.fixture(scope="module")
def data():
    return ReferenceData.open(use_env=False)


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- dosage text -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "amount", "unit", "up_to"), [
    ("10 MG", "10", "mg", False), ("0.1 MG", "0.1", "mg", False), ("1 MICROGRAM", "1", "mcg", False),
    ("100 UNITS", "100", "units", False), ("1 ML", "1", "mL", False), ("1000 CC", "1000", "mL", False),
    ("1MG", "1", "mg", False), ("1.125 gm", "1.125", "g", False), ("1 IU", "1", "units", False),
    ("UP TO 80 MG", "80", "mg", True), ("1 millicurie", "1", "mCi", False),
])
def test_dosage_text_gives_amount_and_unit(text, amount, unit, up_to):
    assert parse_dosage(text) == Dosage(Decimal(amount), unit, up_to)


@pytest.mark.parametrize("text", ["10 MG/3MG", "Per 3.2 MG single-use applicator", "2 MG - 3 MG", "", None, "0 MG"])
def test_dosage_text_naming_no_single_unit_gives_none(text):
    assert parse_dosage(text) is None


def test_ndc_forms_are_normalised_to_11_digits():
    assert ndc11("72893000201") == ndc11("72893-0002-01") == ndc11("72893-002-01") == "72893000201"
    assert ndc11("0781-3400-95") == "00781340095"
    assert ndc11("888867413689") is None and ndc11("GG100") is None


# --- rows CMS published inconsistently ---------------------------------------------------------

def test_crosswalk_flags_tolerate_cms_rounding_to_whole_units():
    assert crosswalk_flags("00409-9094-25", "2.5", "25", "63") == ()  # 62.5 published as 63
    assert crosswalk_flags("00574-0872-05", "5", "1", "20") == ("arithmetic",)  # J1380: 5 x 1 is not 20
    assert crosswalk_flags("00053-7201-02", "0.1", "1", "0.1") == ("implausible",)  # Zemaira: a vial as 0.1 unit
    assert crosswalk_flags("00053-7201-02", "", "1", "1") == ("unreadable",)
    assert crosswalk_flags("888867413689", "20", "3", "60") == ("not-an-ndc",)


def test_inconsistent_rows_are_flagged_in_the_store_and_left_out_of_item_sizes(data):
    zemaira = data.drug("J0256", NOV_2025)
    assert zemaira.items and not any(item.consistent for item in zemaira.items)
    assert {item.flags for item in zemaira.items} == {("implausible",)}
    assert zemaira.item_sizes == ()  # never a vial size to check against
    estradiol = [i for i in data.drug("J1380", NOV_2025).items if i.ndc == "00574-0872-05"]
    assert [i.flags for i in estradiol] == [("arithmetic",)]
    assert "BILLUNITS x PKG QTY" in estradiol[0].problems[0]


# --- the lookup API on real rows ----------------------------------------------------------------

def test_rituximab_j9312_has_two_vial_sizes(data):
    drug = data.drug("J9312", NOV_2025)
    assert drug.descriptor == "Injection, rituximab, 10 mg"
    assert drug.billing_unit == Dosage(Decimal(10), "mg")
    assert drug.item_sizes == (Decimal(10), Decimal(50))  # 100 mg and 500 mg vials
    assert drug.payment_limit == Decimal("75.220")
    assert (drug.opps_status, drug.opps_apc) == ("K", "9186")
    assert drug.is_drug and not any(q.outside for q in drug.quarters if q.kind != "mue")


def test_a_rituximab_biosimilar_q5115(data):
    drug = data.drug("Q5115", NOV_2025)
    assert "rituximab-abbs, biosimilar" in drug.descriptor
    assert drug.billing_unit == Dosage(Decimal(10), "mg")
    assert drug.item_sizes == (Decimal(10), Decimal(50))
    assert {i.drug_name.strip() for i in drug.items} == {"Truxima"}


def test_bortezomib_j9041_is_billed_per_tenth_of_a_mg_and_packaged_under_opps_from_2025(data):
    drug = data.drug("J9041", NOV_2025)
    assert drug.billing_unit == Dosage(Decimal("0.1"), "mg")
    assert Decimal(35) in drug.item_sizes  # a 3.5 mg vial
    assert drug.opps_status == "N"
    assert data.drug("J9041", dt.date(2024, 2, 1)).opps_status == "K"


def test_pembrolizumab_j9271_per_mg_and_its_mue(data):
    drug = data.drug("J9271", NOV_2025)
    assert drug.billing_unit == Dosage(Decimal(1), "mg")
    assert drug.item_sizes == (Decimal(100),)
    mue = drug.mue["outpatient_hospital"]
    assert (mue.units, mue.mai) == (400, 3)


def test_codes_billed_in_micrograms_units_and_millilitres(data):
    assert data.drug("J0881", NOV_2025).billing_unit == Dosage(Decimal(1), "mcg")  # darbepoetin
    assert data.drug("J0885", NOV_2025).billing_unit == Dosage(Decimal(1000), "units")  # epoetin
    hep_b_ig = data.drug("90371", NOV_2025)  # an immune globulin (a CPT code: no HCPCS descriptor)
    assert hep_b_ig.billing_unit == Dosage(Decimal(1), "mL")
    assert hep_b_ig.descriptor is None and hep_b_ig.is_drug
    assert hep_b_ig.item_sizes == (Decimal("0.5"), Decimal(1), Decimal(5))


def test_a_c9_code_is_a_drug_from_its_descriptor_and_opps_status(data):
    cangrelor = data.drug("C9460", NOV_2025)
    assert not cangrelor.items and cangrelor.payment_limit is None  # C-codes are in no ASP file
    assert (cangrelor.dosage, cangrelor.dosage_source) == ("1 mg", "HCPCS descriptor")
    assert cangrelor.opps_status == "K" and cangrelor.is_drug
    assert cangrelor.mue["outpatient_hospital"].units == 100
    assert not data.drug("C9399", NOV_2025).is_drug  # unclassified: status A, no unit


def test_belinostat_j9032_quarter_by_date_of_service(data):
    october = data.drug("J9032", NOV_2025)
    assert october.payment_limit == Decimal("52.474")
    [item] = october.items
    assert (item.ndc, item.billing_units_per_item, item.billing_units_per_package) == ("72893-0002-01", 50, 50)
    assert (october.mue["outpatient_hospital"].units, october.mue["outpatient_hospital"].mai) == (300, 3)
    january = data.drug("J9032", dt.date(2026, 1, 15))
    assert january.payment_limit == Decimal("53.111")
    assert {q.quarter for q in january.quarters if q.kind.startswith("asp")} == {"January 2026"}


def test_a_date_outside_the_covered_quarters_uses_the_nearest_and_says_so(data):
    before = data.drug("J9032", dt.date(2023, 6, 1))
    crosswalk = next(q for q in before.quarters if q.kind == "asp_crosswalk")
    assert (crosswalk.quarter, crosswalk.outside) == ("January 2024", True)
    after = data.drug("J9032", dt.date(2026, 6, 1))
    assert next(q for q in after.quarters if q.kind == "asp_pricing").quarter == "January 2026"
    assert {q.kind for q in after.outside} >= {"asp_pricing", "asp_crosswalk", "hcpcs"}
    inside = data.drug("J9032", NOV_2025)
    assert {q.kind for q in inside.outside} == {"mue"}  # only the October 2026 MUE table is at hand


def test_an_ndc_gives_the_codes_it_is_crosswalked_to(data):
    [item] = data.codes_for_ndc("72893000201", NOV_2025)
    assert item.hcpcs == "J9032" and item.drug_name.strip() == "Beleodaq"
    assert {i.hcpcs for i in data.codes_for_ndc("50242-0051-21", NOV_2025)} == {"J9312"}
    assert data.codes_for_ndc("00000000000", NOV_2025) == ()


def test_a_code_in_no_file_gives_none(data):
    assert data.drug("J0000", NOV_2025) is None


# --- the shipped store --------------------------------------------------------------------------

def test_the_shipped_store_names_its_quarters(data):
    quarters = {title: [i.quarter for i in infos] for title, infos in data.quarters().items()}
    nine = ["January 2024", "April 2024", "July 2024", "October 2024", "January 2025", "April 2025", "July 2025",
            "October 2025", "January 2026"]
    assert quarters["ASP NDC-HCPCS crosswalk"] == nine
    assert quarters["ASP pricing"] == nine
    assert quarters["OPPS Addendum B"] == ["January 2024", "January 2025", "July 2025", "October 2025"]
    assert quarters["HCPCS file"] == ["October 2025"]
    assert quarters["MUE table, outpatient hospital services"] == ["October 2026"]


def test_the_shipped_store_is_small_and_ships_in_the_package():
    size = sum(p.stat().st_size for p in BUILTIN_STORE.iterdir())
    assert size < 2_000_000, f"the shipped store grew to {size:,} bytes"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"scrubber.refdata"' in pyproject and "cms/*.csv.gz" in pyproject


def test_addendum_b_keeps_no_cpt_row_and_no_descriptor(data):
    for info in (i for i in data.sources if i.kind == "opps_addendum_b"):
        rows = read_table(info)
        assert all(re.fullmatch(r"[A-CE-V]\d{4}", r["code" if "code" in r else "hcpcs"]) for r in rows)
        assert not any("descript" in column for column in rows[0])


def test_the_crosswalk_is_read_as_cp1252(data):
    # CMS's exact October 2025 file spells "CarePatch™" in cp1252 (0x99); the re-encoded copy lost the ™.
    names = {i.drug_name for i in data.drug("Q4236", NOV_2025).items}
    assert any("™" in name for name in names)


@needs_cms
def test_the_shipped_store_is_what_the_build_tool_makes_from_every_cms_file():
    parsed, _ = read_files(_tool("build_refdata").cms_files(CMS))
    last = {source.key: source for source in parsed}  # the later of two releases wins, as in the tool
    shipped = {info.key: info for info in read_manifest(BUILTIN_STORE)}
    assert set(shipped) == set(last)
    for key, source in last.items():
        assert shipped[key].source == source.source and shipped[key].digest == source.digest, key
        table = gzip.decompress((BUILTIN_STORE / shipped[key].file).read_bytes())
        assert table == render_table(source.kind, source.rows), key


def test_the_issue_figures_on_the_october_2025_files(data):
    """Issue 10 quotes: 1,107 active J-codes; 740 in the crosswalk (6,283 NDC rows, 282 labelers);
    566 per N mg; 352 with more than one item size; 85 rows inconsistent. The README explains 568."""
    figures = _tool("refdata_figures").figures(data, dt.date(2025, 10, 1))
    assert figures["active J-codes (HCPCS file)"] == 1107
    assert figures["J-codes in the crosswalk with an NDC"] == 740
    assert figures["J-code rows (NDC rows)"] == 6283
    assert figures["labelers (names as printed)"] == 282
    assert figures["J-codes billed per N mg"] == 568
    assert figures["J-codes with more than one item size (BILLUNITS)"] == 352
    assert figures["J-code rows inconsistent: arithmetic"] == 85
    assert figures["J-code rows inconsistent: implausible"] == 9


# --- reading CMS files --------------------------------------------------------------------------

CROSSWALK_HEADER = ("_2026_CODE,Short Description,LABELER NAME,NDC2,Drug Name,HCPCS dosage,PKG SIZE,PKG QTY,BILLUNITS,"
                    "BILLUNITSPKG\r\n")
PREAMBLE = ("April 2026 ASP NDC - HCPCS Crosswalk for Medicare Part B Drugs,,,\r\n"
            '"     Effective April 1, 2026 through June 30, 2026",,,\r\n,,,\r\n')


BELINOSTAT_ROW = "J9032,Injection belinostat 10mg,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25"


def crosswalk_bytes(*rows: str, header: str = CROSSWALK_HEADER, preamble: str = PREAMBLE) -> bytes:
    return (preamble + header + "".join(r + "\r\n" for r in rows)).encode("cp1252")


def test_a_file_is_recognised_by_content_not_name():
    source = read_csv("Oct2025_ASP_pricing.csv", crosswalk_bytes(
        "J9032,Injection belinostat 10mg,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25"))
    assert source.kind == "asp_crosswalk"
    assert (source.effective_from, source.effective_to) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))


def test_effective_given_for_a_file_that_states_its_dates_must_agree():
    data = crosswalk_bytes(BELINOSTAT_ROW)
    assert read_csv("x.csv", data, dt.date(2026, 5, 15)).effective_from == dt.date(2026, 4, 1)
    with pytest.raises(ReferenceDataError, match="effective from 2026-04-01, but --effective says 2026-01-01"):
        read_csv("x.csv", data, dt.date(2026, 1, 1))


@needs_cms
def test_the_january_2024_crosswalk_headed_2023_code_is_dated_by_its_effective_line():
    source = read_csv("x.csv", (CMS / "quarters" / "Jan2024_ASP_NDC-HCPCS_crosswalk.csv").read_bytes())
    assert source.kind == "asp_crosswalk" and source.effective_from == dt.date(2024, 1, 1)


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "not a CMS file the scrubber reads"),
    (b"\x00\x01binary", "binary content"),
    (b"a,b,c\r\n1,2,3\r\n", "not a CMS file the scrubber reads"),
    (crosswalk_bytes(header=CROSSWALK_HEADER.replace(",BILLUNITSPKG", "")), "lacks the column(s) BILLUNITSPKG"),
    (crosswalk_bytes("J9032,x,y,72893-0002-01,z,10 MG,1,1,25,25", preamble=""), "no \"Effective <date> through"),
    (crosswalk_bytes(), "without a single row"),
    (crosswalk_bytes("J9032X,x,y,72893-0002-01,z,10 MG,1,1,25,25"), "row 5: _2026_CODE 'J9032X' is not a HCPCS"),
])
def test_a_file_that_cannot_be_read_is_refused_with_one_message_naming_it(data, problem):
    with pytest.raises(ReferenceDataError) as caught:
        read_csv("bad.csv", data)
    assert str(caught.value).startswith("bad.csv: ") and problem in str(caught.value)


MUE_HEADER = "HCPCS/CPT Code,{} Services MUE Values,MUE Adjudication Indicator,MUE Rationale\r\n"


def test_mue_tables_in_cms_layout_by_setting_dated_by_name_or_effective():
    body = "J9312,150,3 Date of Service Edit: Clinical,Prescribing Information\r\n"
    practitioner = read_csv("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv",
                            ("CPT codes and descriptions only are copyright AMA\r\n" + MUE_HEADER.format("Practitioner")
                             + body).encode())
    assert (practitioner.kind, practitioner.setting, practitioner.effective_from) == (
        "mue", "practitioner", dt.date(2026, 1, 1))
    assert practitioner.rows == [("J9312", "150", "3", "Prescribing Information")]
    # CMS's own layout: a quoted, multi-line AMA notice first, a header cell broken over two lines.
    published = read_csv("MCR_MUE_PractitionerServices_Eff_04-01-2026.csv", (
        '"CPT codes, descriptions and other data only are copyright 2025 American Medical Association.\r\n'
        'All Rights Reserved.",,,\r\n"HCPCS/\r\nCPT Code","Practitioner Services MUE Values",'
        '"MUE Adjudication Indicator","MUE Rationale"\r\n' + body).encode("cp1252"))
    assert (published.setting, published.effective_from, published.rows) == (
        "practitioner", dt.date(2026, 4, 1), practitioner.rows)
    with pytest.raises(ReferenceDataError, match="--effective"):
        read_csv("mue.csv", (MUE_HEADER.format("Outpatient Hospital") + body).encode())
    dated = read_csv("mue.csv", (MUE_HEADER.format("Outpatient Hospital") + body).encode(), dt.date(2026, 4, 1))
    assert (dated.setting, dated.effective_from) == ("outpatient_hospital", dt.date(2026, 4, 1))
    with pytest.raises(ReferenceDataError, match="another setting"):
        read_csv("mue_2026-01-01.csv", (MUE_HEADER.format("DME Supplier") + body).encode())


@needs_cms
def test_addendum_b_gets_its_year_from_the_title_and_its_quarter_from_name_or_effective(tmp_path):
    data = (CMS / "quarters" / "OPPS_AddendumB_Oct2025.csv").read_bytes()
    with pytest.raises(ReferenceDataError, match=r"only its calendar year \(CY 2025\)"):
        read_csv("addendum.csv", data)
    assert read_csv("addendum.csv", data, dt.date(2025, 10, 1)).effective_from == dt.date(2025, 10, 1)
    with pytest.raises(ReferenceDataError, match="for CY 2025"):
        read_csv("addendum.csv", data, dt.date(2026, 1, 1))
    source = read_csv("OPPS_AddendumB_Oct2025.csv", data)
    assert source.effective_from == dt.date(2025, 10, 1)
    assert ("J9041", "N", "", "", "") in source.rows
    assert not any(row[0] == "99213" or row[0].startswith("D") for row in source.rows)


# --- the store ----------------------------------------------------------------------------------

def _site_store(tmp_path: pathlib.Path, *rows: str) -> pathlib.Path:
    site = tmp_path / "site-data"
    add_sources(site, [read_csv("Apr2026_ASP_NDC-HCPCS_crosswalk.csv", crosswalk_bytes(*rows))])
    return site


def test_a_site_store_adds_a_quarter_on_top_of_the_shipped_ones(tmp_path, monkeypatch):
    site = _site_store(tmp_path, "J9032,Injection belinostat 10mg,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25")
    monkeypatch.setenv("SCRUBBER_DATA", str(site))
    data = ReferenceData.open()
    april = data.drug("J9032", dt.date(2026, 5, 1))
    assert [i.billing_units_per_item for i in april.items] == [25]
    assert not next(q for q in april.quarters if q.kind == "asp_crosswalk").outside
    assert [i.billing_units_per_item for i in data.drug("J9032", NOV_2025).items] == [50]  # the shipped quarter
    assert "reference data (CMS): built-in + " in data.summary()[0]


def test_a_second_release_of_a_quarter_replaces_the_first_and_its_table(tmp_path):
    site = _site_store(tmp_path, "J9032,x,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25")
    [(info, replaced)] = add_sources(site, [read_csv("second.csv", crosswalk_bytes(
        "J9032,x,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,50,50"))])
    assert replaced.source == "Apr2026_ASP_NDC-HCPCS_crosswalk.csv" and info.source == "second.csv"
    assert [i.source for i in read_manifest(site)] == ["second.csv"]
    assert sorted(p.name for p in site.glob("*.csv.gz")) == [info.file]


def test_a_line_break_inside_a_cell_keeps_one_row_a_line(tmp_path):
    source = read_csv("x.csv", crosswalk_bytes('J9032,x,Acrotech,72893-0002-01,"Beleodaq\r\nvial",10 MG,1,1,50,50'))
    site = tmp_path / "store"
    add_sources(site, [source])
    [item] = ReferenceData([site], builtin=None).codes_for_ndc("72893000201", dt.date(2026, 5, 1))
    assert item.drug_name == "Beleodaq vial" and item.billing_units_per_item == 50


def test_a_damaged_table_is_refused_not_read(tmp_path):
    site = _site_store(tmp_path, "J9032,x,Acrotech,72893-0002-01,Beleodaq,10 MG,1,1,25,25")
    [table] = site.glob("*.csv.gz")
    table.write_bytes(gzip.compress(gzip.decompress(table.read_bytes()).replace(b",25,25", b",99,99")))
    with pytest.raises(ReferenceDataError, match="does not match the manifest"):
        ReferenceData([site], builtin=None).drug("J9032", dt.date(2026, 5, 1))


def test_tables_are_read_only_when_a_lookup_needs_them(tmp_path):
    store = tmp_path / "copy"
    shutil.copytree(BUILTIN_STORE, store)
    data = ReferenceData([store], builtin=None)
    data.summary()
    assert data._tables == {}
    data.drug("J9032", NOV_2025)
    loaded = {pathlib.Path(key).name.split("-")[0] for key in data._tables}
    assert loaded == {"hcpcs", "asp_pricing", "asp_crosswalk", "opps_addendum_b", "mue"}
    assert len(data._tables) == 5  # the quarter in effect only


def test_refdata_sits_below_the_rules_and_the_library_does_not_load_it():
    root = pathlib.Path(scrubber.__path__[0]) / "refdata"
    for path in root.glob("*.py"):
        text = path.read_text()
        for higher in ("model", "rules", "output", "cli", "watch", "api"):
            assert f"from ..{higher}" not in text, f"{path.name} imports {higher}"
    import subprocess
    import sys

    code = "import sys, scrubber; scrubber.scrub; print('scrubber.refdata.lookup' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


HCPCS_HEADER = "HCPC,SEQNUM,RECID,LONG DESCRIPTION,SHORT DESCRIPTION,ADD DT,ACT EFF DT,TERM DT,ACTION CD\r\n"


def test_the_hcpcs_file_joins_continuation_lines_and_is_dated_by_its_newest_action():
    lines = ["   JW,0010,7,Drug amount discarded,Discarded drug,20170101,20170101,,N",
             "J9999,0010,3,Not otherwise classified,,19840101,20260101,,N",
             "J9999,0020,4,antineoplastic drugs,,,,,",
             'J9032,0010,3,"Injection, belinostat, 10 mg",,20160101,20160101,,N']
    source = read_csv("anything.csv", (HCPCS_HEADER + "\r\n".join(lines) + "\r\n").encode())
    assert (source.kind, source.effective_from, source.effective_to) == ("hcpcs", dt.date(2026, 1, 1),
                                                                         dt.date(2026, 3, 31))
    assert [row[:3] for row in source.rows] == [("J9999", "", "Not otherwise classified antineoplastic drugs"),
                                                ("J9032", "", "Injection, belinostat, 10 mg")]
    with pytest.raises(ReferenceDataError, match="ACT EFF DT '2016-01' is not a date"):
        read_csv("x.csv", (HCPCS_HEADER + "J9032,0010,3,x,,20160101,2016-01,,N\r\n").encode())
