"""Fixes as in a linter: applied, checked again, reported as fixed; the corrected file stays valid."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import SAMPLES
from pyx12_check import pyx12_valid

from scrubber.rules import engine
from scrubber.rules.engine import FixMode
from scrubber.rules.findings import ClaimContext, Findings, Fix, FixClassError
from scrubber.rules.history import RunHistory
from scrubber.x12.tokenizer import Delimiters

DEFECTS = SAMPLES / "defects_837p.837"

# claim -> (rule, value found, value written, the segment as it goes out)
FIXED = {
    "P-U002-FRACTION": ("U002", "199.5", "200", b"SV1*HC:J9032:JZ*10468.56*UN*200***1~"),
    "P-U003-MG-AS-UNITS": ("U003", "1800", "180", b"SV1*HC:J9032*9445.32*UN*180***1~"),
    "P-M005-JZ-TWICE": ("M005", "JZ", "HC:J9032:JZ", b"SV1*HC:J9032:JZ*10494.80*UN*200***1~"),
    "P-N002-NDC-HYPHENS": ("N002", "72893-002-01", "72893000201", b"LIN**N4*72893000201~"),
}


@pytest.mark.parametrize("claim_id", sorted(FIXED))
def test_a_fixed_value_goes_out_and_leaves_no_error_behind(claim_id, samples):
    rule, before, after, written = FIXED[claim_id]
    result = samples["defects_837p.837"]
    claim = result.claim(claim_id)
    assert claim["disposition"] == "corrected"
    [finding] = claim["findings"]
    assert (finding["rule"], finding["fixed"], finding["before"], finding["after"]) == (rule, True, before, after)
    assert written in result.corrected


def test_the_corrected_file_is_checked_again_and_is_clean(scrub, samples, rules):
    """Scrubbing the corrected file finds nothing: every fix held."""
    again = scrub(samples["defects_837p.837"].corrected)
    assert {c["disposition"] for c in again.report["claims"]} == {"accepted"}
    left = {f["rule"] for c in again.report["claims"] for f in c["findings"]}
    # Only the warnings on claims that went out as they were.
    assert left <= {r.id for r in rules.catalog.values() if r.severity == "warning"}


def test_a_fix_can_clear_another_finding(samples):
    """1800 units of J9032 is also above the 300-unit ceiling; fixing the units clears that too."""
    claim = samples["defects_837p.837"].claim("P-U003-MG-AS-UNITS")
    assert [f["rule"] for f in claim["findings"]] == ["U003"]


def test_rejected_claims_report_their_fixes_as_not_applied(scrub):
    data = DEFECTS.read_bytes().replace(
        b"CLM*P-U003-MG-AS-UNITS*10494.8*", b"CLM*P-U003-MG-AS-UNITS*99*"
    ).replace(b"SV1*HC:J9032*9445.32*UN*1800***1~", b"SV1*HC:J9032:JB*9445.32*UN*1800***1~")
    claim = scrub(data).claim("P-U003-MG-AS-UNITS")
    assert claim["disposition"] == "rejected"
    by_rule = {f["rule"]: f for f in claim["findings"]}
    # The claim as sent: 1800 units are also above the ceiling (U007) and make no whole vials
    # with the JW line (U006); the fix that would clear them was not applied.
    assert set(by_rule) == {"U003", "B001", "M003", "U006", "U007"}
    assert "1820 units" in by_rule["U007"]["message"]
    assert not by_rule["U003"]["fixed"] and by_rule["U003"]["after"] == "180"
    assert not by_rule["B001"]["fixed"]


def test_corrected_output_passes_pyx12_though_the_input_did_not(samples):
    assert not pyx12_valid(DEFECTS.read_bytes())
    assert pyx12_valid(samples["defects_837p.837"].corrected)
    assert pyx12_valid(samples["defects_837i.837"].corrected)


def test_hl_numbers_are_renumbered_with_their_parents(samples):
    text = samples["defects_837p.837"].corrected.decode()
    hls = [s.split("*") for s in text.split("~\n") if s.startswith("HL*")]
    assert [h[1] for h in hls] == [str(i) for i in range(1, len(hls) + 1)]
    assert all(h[2] == "1" for h in hls[1:])


def test_a_dependent_patient_loop_goes_with_its_claim(scrub):
    """Rejecting the first claim renumbers the subscriber (22) and patient (23) loops after it."""
    clean = (SAMPLES / "clean_837p.837").read_bytes()
    broken = clean.replace(b"SV1*HC:J9032*9445.32*UN*180***1~", b"SV1*HC:J9032*9445.32*UN*0***1~", 1)
    result = scrub(broken)
    assert result.claim("P-OK-MEDICARE-JW")["disposition"] == "rejected"
    text = result.corrected.decode()
    assert "HL*5*1*22*1~\nSBR*P**GRP0001" in text  # the dependent's subscriber, was HL 6
    assert "HL*6*5*23*0~" in text  # its patient loop, was HL 7 under 6
    assert pyx12_valid(result.corrected)


def test_no_corrected_file_when_no_claim_can_go_out(scrub):
    data = (SAMPLES / "clean_837i.837").read_bytes().replace(b"*UN*180~", b"*UN*0~").replace(b"*UN*200~", b"*UN*0~")
    result = scrub(data)
    assert result.report["summary"]["rejected"] == 2
    assert result.corrected is None


def test_no_fix_mode_keeps_every_byte_of_what_goes_out(scrub):
    result = scrub(DEFECTS, FixMode.NONE)
    assert result.report["summary"]["corrected"] == 0
    for claim in result.report["claims"]:
        if claim["disposition"] == "accepted":
            assert claim["claim_id"].encode() in result.corrected


def test_a_loop_whose_children_are_gone_says_so_in_hl04(scrub):
    """A subscriber with a claim of their own and a dependent's: reject the dependent's claim,
    and the subscriber loop stays with HL04 0 (no child loops follow)."""
    clean = (SAMPLES / "clean_837p.837").read_bytes().decode()
    own_claim = "CLM*P-OK-SUBSCRIBER*100***11:B:1*Y*A*Y*Y~\nHI*ABK:E119~\nLX*1~\nSV1*HC:99214*100*UN*1***1~\n" \
                "DTP*472*D8*20261102~\n"
    head, tail = clean.split("HL*7*6*23*0~\n")
    data = (head.replace("SBR*P**GRP0001******CI~", "SBR*P*18*GRP0001******CI~")
            + own_claim + "HL*7*6*23*0~\n" + tail.replace("UN*100***1~", "UN*0***1~", 1)).encode()
    before = scrub(data)
    assert before.claim("P-OK-SUBSCRIBER")["disposition"] == "accepted"
    assert before.claim("P-OK-DEPENDENT")["disposition"] == "rejected"
    text = before.corrected.decode()
    assert "HL*6*1*22*0~" in text and "*23*" not in text
    assert "P-OK-DEPENDENT" not in text


def _findings(rules, claim=None) -> Findings:
    context = ClaimContext(rules, rules.policy_for("MB", None), RunHistory(), dt.date(2026, 11, 27),
                           Delimiters("*", ":", "~", "^"), 0)
    return Findings(context, claim)


def test_a_fix_on_a_rule_whose_catalog_says_none_fails(rules):
    """fix_class_mismatch: the catalog is the one source of a rule's fix class."""
    out = _findings(rules)
    with pytest.raises(FixClassError, match="M003"):
        out.add("M003", None, fix=Fix((), "x"), modifier="JB", meaning="", code="J9032", routes="IV")


def test_a_fix_takes_its_class_from_the_catalog_whatever_the_check_says(rules):
    """fix_class_mismatch: a check cannot make an unsafe rule's fix safe."""
    out = _findings(rules)
    out.add("B001", None, fix=Fix((), "10494.80", safety="safe"), total="1", lines="2")
    assert out.items[0].fix.safety == "unsafe" == rules.rule("B001").fix


def test_the_pass_limit_is_reported_and_holds_the_claim_back(scrub, monkeypatch):
    """fix_loop_pass_limit_silent: fixes still pending after the last pass reject the claim with S006."""
    monkeypatch.setattr(engine, "MAX_PASSES", 1)
    data = DEFECTS.read_bytes().replace(b"SV1*HC:J9032:JZ:JZ*10494.80*UN*200***1~",
                                        b"SV1*HC:J9032:JZ:JZ*10494.80*UN*200.5***1~")
    claim = scrub(data).claim("P-M005-JZ-TWICE")
    # M005 rewrites SV101 and U002 SV104 in the first pass; nothing is left: settled.
    assert claim["disposition"] == "corrected"
    monkeypatch.setattr(engine, "MAX_PASSES", 0)
    claim = scrub(data).claim("P-M005-JZ-TWICE")
    assert claim["disposition"] == "rejected"
    [limit] = [f for f in claim["findings"] if f["rule"] == "S006"]
    assert "after 0 passes" in limit["message"]
