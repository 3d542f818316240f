"""Checks for every drug in CMS's files (issue 10 §2-§4), on real rows of the shipped store.

Each claim is built with tools/make_samples.py from crosswalk rows of January 2026 (the NDCs and
billing units per item are CMS's); the rules fire on one shape and stay quiet on the clean one.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys

import pytest
from conftest import ROOT, scrub_bytes

from scrubber import FixMode, load_rules
from scrubber.errors import RuleDataError
from scrubber.rules import cms_data


def _tool():
    spec = importlib.util.spec_from_file_location("make_samples_cms", ROOT / "tools" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


T = _tool()
drug = T._drug


def scrub_claims(rules, *claims, kind="837P", mode=FixMode.SAFE):
    data = T.render(T.SampleFile("test.837", kind, "test", list(claims)), 1).encode("latin-1")
    return scrub_bytes(data, rules, mode)


def findings(result, claim_id="C1"):
    return result.claim(claim_id)["findings"]


def rule_ids(result, claim_id="C1"):
    return [f["rule"] for f in findings(result, claim_id)]


def claim(*lines, **kwargs):
    kwargs.setdefault("diagnoses", T.LYMPHOMA)
    return T.Claim("C1", "test", list(lines), **kwargs)


# The clean multi-drug claim of §4, with J9032 (the worked example) on it too.
def clean_lines():
    worked = [T.Line(units="180", charge="18890.64", ndc=T.BELINOSTAT_NDC, quantity="1800", date=T.CMS_DAY),
              T.Line(modifiers=("JW",), units="20", charge="2098.96", ndc=T.BELINOSTAT_NDC, quantity="200",
                     date=T.CMS_DAY)]
    return [*T.clean_multi_drug_837p()[0].lines, *T.clean_multi_drug_837p()[1].lines, *worked]


def test_a_clean_multi_drug_claim_from_real_rows_is_accepted(rules):
    result = scrub_claims(rules, claim(*clean_lines(), diagnoses=("ABK:C8440", "ABF:C8330", "ABF:C9000")))
    assert result.claim("C1")["disposition"] == "accepted", findings(result)
    assert findings(result) == []


@pytest.mark.parametrize(("index", "change", "rule", "disposition"), [
    # Q5115 with Rituxan's NDC (J9312's drug)
    (9, {"ndc": T.RITUXAN_500}, "N006", "rejected"),
    # pembrolizumab: 200 units, CTP04 2 vials; 300 units cannot come out of two 100 mg vials
    (4, {"units": "300", "charge": "36000.00"}, "U017", "rejected"),
    # Botox 100 units: JW discards a whole 100-unit vial
    (7, {"modifiers": ("JW",)}, "U018", "rejected"),
])
def test_the_clean_claim_with_one_defect_is_flagged(rules, index, change, rule, disposition):
    lines = clean_lines()
    for key, value in change.items():
        setattr(lines[index], key, value)
    result = scrub_claims(rules, claim(*lines, diagnoses=("ABK:C8440", "ABF:C8330", "ABF:C9000")))
    assert rule_ids(result) == [rule], findings(result)
    assert result.claim("C1")["disposition"] == disposition


def test_units_entered_as_milligrams_on_the_clean_claim(rules):
    # Rituximab biosimilar Q5115, per 10 mg: 500 mg entered as 500 units; above the MUE of 150, so 50 is
    # certain: U024, the safe one of the pair (U016 is the unsafe one).
    lines = clean_lines()
    lines[9].units = "500"
    result = scrub_claims(rules, claim(*lines, diagnoses=("ABK:C8440", "ABF:C8330", "ABF:C9000")))
    found = findings(result)
    assert [f["rule"] for f in found] == ["U024"]
    assert found[0]["fix"] == "safe" and found[0]["fixed"] and found[0]["after"] == "50"
    assert "billed per 10 mg (per CMS ASP pricing January 2026)" in found[0]["message"]
    assert result.claim("C1")["disposition"] == "corrected"


@pytest.mark.parametrize(("line", "after", "safety"), [
    (drug("J2469", "250", "20.00", "00409250410", "0.25"), "10", "safe"),  # palonosetron per 25 mcg; MUE 60
    (drug("J7050", "500", "10.00", T.SALINE, "500", unit="ML"), "2", "safe"),  # saline per 250 mL; MUE 20
    (drug("J9263", "153", "40.00", "00703398601", "153"), "306", "unsafe"),  # oxaliplatin per 0.5 mg; MUE 700
])
def test_units_entered_as_the_dose_in_mcg_ml_and_mg(rules, line, after, safety):
    rule = "U024" if safety == "safe" else "U016"  # one fix class per rule
    found = [f for f in findings(scrub_claims(rules, claim(line), mode=FixMode.NONE)) if f["rule"] in ("U016", "U024")]
    assert [(f["rule"], f["after"], f["fix"]) for f in found] == [(rule, after, safety)]
    # Applied when allowed, the fix leaves nothing (the charge fits the corrected units).
    fixed = scrub_claims(rules, claim(line), mode=FixMode.UNSAFE)
    assert [(f["rule"], f["fixed"]) for f in findings(fixed)] == [(rule, True)]


def test_a_code_billed_per_one_unit_takes_the_dose_as_its_units(rules):
    # pembrolizumab per 1 mg, Botox per 1 unit: units equal to the dose are right
    result = scrub_claims(rules, claim(drug("J9271", "200", "24000.00", T.KEYTRUDA, "200", modifiers=("JZ",)),
                                       drug("J0585", "100", "1302.00", T.BOTOX, "100", unit="F2", modifiers=("JZ",))))
    assert findings(result) == []


def test_a_row_cms_published_inconsistently_never_drives_a_finding(rules):
    # Zemaira 00053-7201-02 is crosswalked to J0256 as 0.1 billing unit for a whole vial (flagged implausible):
    # on another code's line it is not "another drug's NDC", and its items are never counted.
    other = findings(scrub_claims(rules, claim(drug("J1459", "60", "6100.00", "00053720102", "30", unit="GR"))))
    assert "N006" not in {f["rule"] for f in other} and "N007" not in {f["rule"] for f in other}
    own = findings(scrub_claims(rules, claim(drug("J0256", "100", "9000.00", "00053720102", "1", unit="UN",
                                                  modifiers=("JZ",)), diagnoses=("ABK:E8801",))))
    assert not {"U017", "U018", "U019"} & {f["rule"] for f in own}, own


def test_an_ndc_outside_the_quarters_is_a_warning_naming_the_nearest_quarter(rules):
    inside = findings(scrub_claims(rules, claim(drug("J9271", "200", "24000.00", "00006302699", "200",
                                                     modifiers=("JZ",)))))
    outside = findings(scrub_claims(rules, claim(drug("J9271", "200", "24000.00", "00006302699", "200",
                                                      modifiers=("JZ",), date="20231115"))))
    assert [f["rule"] for f in inside] == ["N007"]
    assert [f["rule"] for f in outside] == ["N008"]
    assert "of January 2024, the nearest quarter to the service date 2023-11-15" in outside[0]["message"]


def test_vials_of_two_sizes_and_vial_sharing(rules):
    # Truxima comes as 100 mg (10 units) and 500 mg (50 units): 70 units are 50 + 10 + 10.
    whole = scrub_claims(rules, claim(drug("Q5115", "70", "4300.00", modifiers=("JZ",))))
    assert findings(whole) == []
    shared = findings(scrub_claims(rules, claim(drug("Q5115", "65", "4000.00", modifiers=("JZ",)))))
    assert [(f["rule"], f["severity"]) for f in shared] == [("U019", "warning")]
    assert "10 or 50 units" in shared[0]["message"]
    # Without JW or JZ nothing says the drug is single-dose: no vial arithmetic.
    assert findings(scrub_claims(rules, claim(drug("Q5115", "65", "4000.00")))) == []


def test_bortezomib_per_0_1_mg_vial_arithmetic_closes_within_one_unit(rules):
    # J9041 has a profile (U005/U006 own its vials); a non-profiled per-0.1 mg code: eribulin J9179 is
    # profiled too, so use oxaliplatin per 0.5 mg: 153 mg = 306 units; 400 units (200 mg vial) - 306 = 94 JW.
    result = scrub_claims(rules, claim(drug("J9263", "306", "40.00", "60505613208", "153"),
                                       drug("J9263", "94", "12.00", "60505613208", "47", modifiers=("JW",))))
    assert findings(result) == [], findings(result)


def test_asp_checks_speak_only_within_the_pricing_quarter_for_undercharging(rules):
    low = drug("J9271", "200", "10000.00", T.KEYTRUDA, "200", modifiers=("JZ",))
    assert rule_ids(scrub_claims(rules, claim(low))) == ["U020"]
    low.date = "20261102"  # after the newest pricing file: a stale price proves nothing about a charge
    assert rule_ids(scrub_claims(rules, claim(low))) == []
    high = drug("J9312", "10", "20000.00", T.RITUXAN_100, "100", modifiers=("JZ",), date="20261102")
    found = findings(scrub_claims(rules, claim(high)))
    assert [f["rule"] for f in found] == ["U021"]
    assert "January 2026, the nearest to the service date 2026-11-02" in found[0]["message"]


def test_mue_per_setting_and_adjudication_indicator(rules):
    over = drug("J9312", "200", "30000.00", T.RITUXAN_500, "2000", modifiers=("JZ",), date=T.MUE_DAY)
    institutional = findings(scrub_claims(rules, claim(over), kind="837I"))
    assert [(f["rule"], f["severity"]) for f in institutional] == [("U022", "error")]
    # Only the outpatient-hospital table is at hand: an 837P has no practitioner MUE to exceed.
    assert "U022" not in rule_ids(scrub_claims(rules, claim(over)))
    # MAI 3: two lines of one day add up (not the same line twice, which would be U014's duplicate).
    split = [drug("J9312", "100", "15000.00", T.RITUXAN_500, "1000", modifiers=("JZ",), date=T.MUE_DAY),
             drug("J9312", "90", "13500.00", T.RITUXAN_100, "900", modifiers=("JZ",), date=T.MUE_DAY)]
    assert rule_ids(scrub_claims(rules, claim(*split), kind="837I")) == ["U022"]


def test_a_site_layer_changes_a_threshold_and_bad_values_are_refused(tmp_path, rules):
    high = drug("J9312", "10", "20000.00", T.RITUXAN_100, "100", modifiers=("JZ",))
    assert rule_ids(scrub_claims(rules, claim(high))) == ["U021"]
    (tmp_path / "drug_data.toml").write_text('[asp]\nover_ratio = "50"\n', encoding="utf-8")
    site = load_rules([tmp_path])
    assert rule_ids(scrub_claims(site, claim(high))) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "drug_data.toml").write_text('[asp]\nover_ratio = "twenty"\n', encoding="utf-8")
    with pytest.raises(RuleDataError, match="over_ratio"):
        cms_data.settings(load_rules([bad]).layers)


def test_drug_lines_are_every_drug_in_cms_files_not_only_j_codes(rules):
    # A Q5 biosimilar, a C9 code, an immune globulin (90xxx) without an NDC are drug lines (U001 zero units).
    for code in ("Q5115", "C9460", "90375"):
        result = scrub_claims(rules, claim(T.Line(code=code, units="0", charge="100", date=T.CMS_DAY)))
        assert "U001" in rule_ids(result), (code, findings(result))
    # An office visit is not.
    visit = scrub_claims(rules, claim(T.Line(code="99213", units="1", charge="100", date=T.CMS_DAY)))
    assert "U001" not in rule_ids(visit)


def test_lookups_are_remembered_per_process():
    first = cms_data.drug("J9271", dt.date(2026, 1, 15))
    assert cms_data.drug("J9271", dt.date(2026, 1, 15)) is first


def test_the_remembered_lookups_are_bounded_and_still_answer(monkeypatch):
    """Regression (a lookup's answer for a (code, day) holds about 8 KB, and they were all kept for
    the process: a watcher, or a file spanning a year of dates, grew without end): the memos keep
    the latest MEMO_LIMIT answers of each kind, and a forgotten one is looked up again, the same."""
    monkeypatch.setattr(cms_data, "MEMO_LIMIT", 8)
    monkeypatch.setattr(cms_data._STORE, "drugs", {})
    monkeypatch.setattr(cms_data._STORE, "ndcs", {})
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(20)]
    first = cms_data.drug("J9271", days[0])
    lookup = cms_data.cms_drugs()
    for day in days:
        assert cms_data.drug("J9271", day) is not None and lookup("J9032", day) is not None
        assert cms_data.crosswalk_rows("00006302602", day)
    assert len(cms_data._STORE.drugs) == len(cms_data._STORE.ndcs) == 8
    assert (("J9032", days[-1]) in cms_data._STORE.drugs) and (("J9271", days[0]) not in cms_data._STORE.drugs)
    again = cms_data.drug("J9271", days[0])
    assert again is not first and again == first


def test_the_drug_samples_clean_claims_are_accepted_with_nothing_said(samples):
    for name in ("drugs_837p.837", "drugs_837i.837"):
        clean = [c for c in samples[name].report["claims"] if "-OK-" in c["claim_id"]]
        assert clean, name
        for found in clean:
            assert found["disposition"] == "accepted" and not found["findings"], (name, found)


def test_the_drug_samples_pass_pyx12():
    from pyx12_check import pyx12_valid

    for name in ("drugs_837p.837", "drugs_837i.837"):
        assert pyx12_valid((ROOT / "edi_samples" / name).read_bytes()), name


def test_an_837p_is_held_to_the_practitioner_mue_once_a_site_imports_it(tmp_path, rules, monkeypatch):
    from scrubber.refdata import DATA_ENV, add_sources, read_files

    table = tmp_path / "MCR_MUE_PractitionerServices_Eff_10-01-2026.csv"
    table.write_bytes(b"HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\r\n"
                      b"J9312,120,3 Date of Service Edit: Clinical,Prescribing Information\r\n")
    parsed, _ = read_files([table])
    add_sources(tmp_path / "cms-data", parsed)
    line = drug("J9312", "130", "20000.00", T.RITUXAN_500, "1300", modifiers=("JZ",), date=T.MUE_DAY)
    assert "U022" not in rule_ids(scrub_claims(rules, claim(line)))
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "cms-data"))
    found = findings(scrub_claims(rules, claim(line)))
    assert [f["rule"] for f in found] == ["U022"]
    assert "practitioner MUE of 120 (MAI 3)" in found[0]["message"]


def test_a_profiles_vial_size_overrides_the_crosswalk_for_items(rules, tmp_path):
    # J9032: four 500 mg vials (CTP04 4 UN) hold 200 units, the crosswalk's 50 units an item.
    line = T.Line(modifiers=("JZ",), units="200", charge="21000.00", ndc=T.BELINOSTAT_NDC, quantity="4", unit="UN",
                  date=T.CMS_DAY)
    assert rule_ids(scrub_claims(rules, claim(line, diagnoses=("ABK:C8440",)))) == []
    # A site's profile that says the vial holds 400 mg wins over the crosswalk: four vials hold 160 units.
    (tmp_path / "drugs.toml").write_text(
        '[[drug]]\nname = "belinostat"\n\n  [[drug.product]]\n  ndc = "72893-0002-01"\n  labeler = "test"\n'
        '  vial_mg = "400"\n  verified = true\n  source = "a test of the override"\n', encoding="utf-8")
    found = findings(scrub_claims(load_rules([tmp_path]), claim(line, diagnoses=("ABK:C8440",))))
    assert [f["rule"] for f in found] == ["U017"], found
    assert "40 units of J9032 each: 160 units" in found[0]["message"]


def test_show_config_says_which_generated_values_a_profile_overrides():
    from click.testing import CliRunner

    from scrubber.cli import cli

    shown = CliRunner().invoke(cli, ["rules", "show-config"])
    assert shown.exit_code == 0
    lines = [line for line in shown.output.splitlines() if line.startswith('generated."J9032"')]
    assert any("billing_unit" in line and "overrides CMS: 10 MG, ASP pricing" in line for line in lines), lines
    assert any("single_dose = true" in line and "not stated in CMS's files" in line for line in lines), lines
    assert any("units_per_day = 300" in line and "MUE 300 (outpatient hospital, MAI 3)" in line for line in lines)


def test_bad_drug_data_or_a_missing_store_is_refused_before_the_scrub(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from scrubber.cli import cli
    from scrubber.refdata import DATA_ENV

    assert cms_data.DATA_ENV == DATA_ENV
    sample = str(ROOT / "edi_samples" / "drugs_837p.837")
    bad = tmp_path / "site"
    bad.mkdir()
    (bad / "drug_data.toml").write_text('[mue]\nper_line = ["one"]\n', encoding="utf-8")
    refused = CliRunner().invoke(cli, ["scrub", sample, "--rules", str(bad), "--out", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "mue.per_line" in refused.output
    assert not (tmp_path / "a").exists()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "no-such-store"))
    missing = CliRunner().invoke(cli, ["scrub", sample, "--out", str(tmp_path / "b")])
    assert missing.exit_code == 2 and "no-such-store" in missing.output
    assert not (tmp_path / "b").exists()
