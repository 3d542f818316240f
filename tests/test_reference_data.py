"""The rule data agrees with CMS's own files, and the code tables are what the tools derive."""

from __future__ import annotations

import datetime as dt
import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT

from scrubber.errors import RuleDataError
from scrubber.rules.code_tables import Icd10Table, packaged_icd10_code_list
from scrubber.rules.ruleset import RuleSet, builtin_rules_dir

CMS = ROOT.parent / "shared" / "reference" / "cms"


def _derive_tool():
    spec = importlib.util.spec_from_file_location("derive_code_tables", ROOT / "tools" / "derive_code_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CMS.is_dir(), reason="CMS reference files not at ../shared/reference/cms")
def test_code_tables_are_what_the_tool_derives_from_cms_files():
    tool = _derive_tool()
    tables = ROOT / "rules" / "code_tables"
    assert (tables / tool.HCPCS_TABLE).read_text() == tool.render(tool.hcpcs_rows(CMS / tool.HCPCS_SOURCE))
    assert (tables / tool.CROSSWALK_TABLE).read_text() == tool.render(tool.crosswalk_rows(CMS / tool.CROSSWALK_SOURCE))


def test_j9032_is_belinostat_per_10_mg(rules):
    """Against the CMS HCPCS file, not the billing guides that call it belantamab per 0.5 mg."""
    drug, code = rules.drugs.by_code("J9032")
    assert drug.name == "belinostat" and code.billing_unit_mg == Decimal("10")
    assert "belinostat" in rules.hcpcs.get("J9032").short_description.lower()
    belantamab, j9037 = rules.drugs.by_code("J9037")
    assert belantamab.name.startswith("belantamab") and j9037.billing_unit_mg == Decimal("0.5")


def test_drug_code_dates_match_the_hcpcs_file(rules):
    for drug in rules.drugs.drugs:
        for code in drug.codes:
            entry = rules.hcpcs.get(code.hcpcs)
            assert entry is not None, code.hcpcs
            assert (code.valid_from, code.valid_to) == (entry.added, entry.terminated), code.hcpcs
            if entry.cross_reference:
                assert entry.cross_reference in code.replaced_by, code.hcpcs


def test_drug_products_match_the_asp_crosswalk(rules):
    drug, product = rules.drugs.by_ndc("72893000201")
    [entry] = [e for e in rules.ndc_crosswalk.product("72893000201") if e.ndc == "72893000201"]
    assert entry.hcpcs in drug.hcpcs_codes
    assert product.billing_units_per_package == 50
    # Belantamab's NDCs are not in the October 2025 crosswalk (J9037 was terminated): the
    # profile is what names them.
    assert rules.ndc_crosswalk.product("00173089601") == []
    assert rules.drugs.by_ndc("00173089601")[0].name.startswith("belantamab")


def test_unverified_values_never_drive_errors(rules):
    belantamab = rules.drugs.by_code("J9037")[0]
    assert Decimal("70") not in belantamab.vial_sizes()  # the 2025 vial size is unverified


def test_billable_icd10_codes_agree_with_simple_icd_10_cm():
    """We read the package's code list directly (its import takes over a second); check that
    what we call billable is exactly what the package calls a leaf."""
    import simple_icd_10_cm as cm

    table = Icd10Table.from_code_list(packaged_icd10_code_list(), "test", dt.date(2025, 10, 1), dt.date(2026, 9, 30))
    codes = [c for c in cm.get_all_codes(with_dots=False) if len(c) >= 3 and c[0].isalpha() and "-" not in c]
    assert len(codes) > 90_000
    disagree = [c for c in codes if table.is_billable(c) != cm.is_leaf(c)]
    assert disagree == []
    assert table.is_billable("C8440") and table.is_billable("C844A") and not table.is_billable("C844")


def _copy_rules(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), target)
    return target


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        ("drugs.toml", 'billing_unit_mg = "10"', 'billing_unit_mg = "ten"', "billing_unit_mg"),
        ("drugs.toml", 'brand = "Beleodaq"', 'brand = "Beleodaq"\ncolour = "blue"', "colour"),
        ("drugs.toml", "valid_from = 2016-01-01", 'valid_from = "2016"', "valid_from"),
        ("drugs.toml", 'ndc = "72893-0002-01"', 'ndc = "7289300201"', "ndc"),
        ("catalog.toml", 'category = "units"', 'category = "dosage"', "category"),
        ("payers.toml", 'classes = ["MC"]', 'classes = ["MB"]', "classes"),
        ("modifiers.toml", 'kind = "route"\nroute = "SC"', 'kind = "path"\nroute = "SC"', "kind"),
    ],
)
def test_invalid_rule_data_gets_one_message_naming_file_and_key(tmp_path, file, old, new, key):
    directory = _copy_rules(tmp_path)
    path = directory / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(RuleDataError) as caught:
        RuleSet(directory)
    assert caught.value.path.endswith(file) and key in caught.value.key
    assert caught.value.expected


def test_code_tables_load_on_first_use():
    """Start-up stays short (timings are in bench/): a table is read when a rule first needs it."""
    fresh = RuleSet(builtin_rules_dir())
    assert not {"icd10", "hcpcs", "ndc_crosswalk"} & set(fresh.__dict__)
    assert fresh.hcpcs.get("J9032") is not None
    assert "hcpcs" in fresh.__dict__
