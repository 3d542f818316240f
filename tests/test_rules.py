"""Each rule fires on a real 837 (the sample built for it) and stays quiet on clean claims."""

from __future__ import annotations

import pytest
from conftest import SAMPLES
from pyx12_check import pyx12_valid

from scrubber.rules import engine
from scrubber.rules.engine import FixMode

# rule -> (sample file, claim built to break it, the disposition it gets with default fixes)
TRIGGERS = {
    "S001": ("defects_837p.837", "P-S001-UNIT-BASIS", "rejected"),
    "S002": ("defects_837p.837", "P-S002-NON-ASCII", "rejected"),
    "S003": ("defects_837p.837", "P-S003-EMPTY-SEGMENT", "rejected"),
    "B001": ("defects_837p.837", "P-B001-TOTAL", "corrected"),
    "C001": ("defects_837p.837", "P-C001-C9442-IN-2026", "rejected"),
    "C002": ("defects_837p.837", "P-C002-UNKNOWN-HCPCS", "rejected"),
    "C003": ("defects_837p.837", "P-C003-OLD-CODE", "accepted"),
    "C004": ("defects_837p.837", "P-C004-CATEGORY", "rejected"),
    "C005": ("defects_837p.837", "P-C005-NOT-A-CODE", "rejected"),
    "C006": ("defects_837p.837", "P-C006-NEWER-CODE", "accepted"),
    "C007": ("defects_837p.837", "P-C007-ICD9", "rejected"),
    "C008": ("defects_837i.837", "I-C008-REVENUE-0250", "accepted"),
    "U001": ("defects_837p.837", "P-U001-ZERO-UNITS", "rejected"),
    "U002": ("defects_837p.837", "P-U002-FRACTION", "corrected"),
    "U003": ("defects_837p.837", "P-U003-MG-AS-UNITS", "corrected"),
    "U004": ("defects_837p.837", "P-U004-DOSE-MISMATCH", "rejected"),
    "U005": ("defects_837p.837", "P-U005-JW-WHOLE-VIAL", "rejected"),
    "U006": ("defects_837p.837", "P-U006-VIALS", "rejected"),
    "U007": ("defects_837p.837", "P-U007-CEILING", "rejected"),
    "M001": ("defects_837p.837", "P-M001-NO-JW-JZ", "rejected"),
    "M002": ("defects_837p.837", "P-M002-JW-AND-JZ", "rejected"),
    "M003": ("defects_837p.837", "P-M003-JB-ROUTE", "rejected"),
    "M004": ("defects_837p.837", "P-M004-JZ-2022", "rejected"),
    "M005": ("defects_837p.837", "P-M005-JZ-TWICE", "corrected"),
    "D001": ("defects_837p.837", "P-D001-POINTER", "rejected"),
    "D002": ("defects_837p.837", "P-D002-NO-INDICATION", "rejected"),
    "D003": ("defects_837p.837", "P-D003-Z51-ONLY", "rejected"),
    "D004": ("defects_837p.837", "P-D004-MYELOMA-ONLY", "rejected"),
    "S004": ("defects_837p.837", "P-S004-FUTURE-DATE", "rejected"),
    "S005": ("defects_837p.837", "P-S005-AFTER-CREATION", "rejected"),
    "B002": ("defects_837p.837", "P-B002-OVER-99999", "rejected"),
    "C009": ("defects_837p.837", "P-C009-BELANTAMAB-2026", "accepted"),
    "C010": ("defects_837p.837", "P-C010-NPI", "rejected"),
    "U008": ("defects_837p.837", "P-U008-WINDOW-B", "rejected"),
    "U009": ("defects_837p.837", "P-U009-CYCLE-B", "accepted"),
    "M006": ("defects_837p.837", "P-M006-NO-KX", "rejected"),
    "M007": ("defects_837p.837", "P-M007-340B-ON-837P", "rejected"),
    "M008": ("defects_837p.837", "P-M008-FIVE-MODIFIERS", "rejected"),
    "N001": ("defects_837p.837", "P-N001-NDC-10-DIGITS", "rejected"),
    "N002": ("defects_837p.837", "P-N002-NDC-HYPHENS", "corrected"),
    "N003": ("defects_837p.837", "P-N003-BELANTAMAB-NDC", "rejected"),
    "N004": ("defects_837p.837", "P-N004-MEDICAID-NO-NDC", "rejected"),
    "N005": ("defects_837p.837", "P-N005-NDC-QUANTITY", "rejected"),
    "A001": ("defects_837p.837", "P-A001-NO-AUTH", "rejected"),
    # every drug in CMS's files (issue 10)
    "N006": ("drugs_837p.837", "P-N006-REFERENCE-NDC", "rejected"),
    "N007": ("drugs_837p.837", "P-N007-NDC-NOT-CROSSWALKED", "accepted"),
    "N008": ("drugs_837p.837", "P-N008-NDC-AFTER-DATA", "accepted"),
    "U016": ("drugs_837p.837", "P-U016-MG-AS-UNITS", "corrected"),
    "U017": ("drugs_837p.837", "P-U017-VIALS", "rejected"),
    "U018": ("drugs_837p.837", "P-U018-JW-WHOLE-VIAL", "rejected"),
    "U019": ("drugs_837p.837", "P-U019-VIALS-NOT-WHOLE", "accepted"),
    "U020": ("drugs_837p.837", "P-U020-BELOW-ASP", "accepted"),
    "U021": ("drugs_837p.837", "P-U021-FAR-ABOVE-ASP", "accepted"),
    "U022": ("drugs_837i.837", "I-U022-MUE", "rejected"),
    "U023": ("drugs_837i.837", "I-U023-MUE-LINES", "accepted"),
}

# Other triggers, on the other file kind or on a second shape of the defect.
MORE_TRIGGERS = [
    ("D002", "defects_837i.837", "I-D002-NO-INDICATION"),
    ("D004", "defects_837i.837", "I-D004-MYELOMA-ONLY"),
    ("M007", "defects_837i.837", "I-M007-340B-NOT-ASKED"),
    ("U003", "defects_837i.837", "I-U003-MG-AS-UNITS"),
    ("B001", "defects_837i.837", "I-B001-TOTAL"),
    ("S001", "defects_837p.837", "P-S001-SHARED-A"),
    ("S001", "defects_837p.837", "P-S001-SHARED-B"),
    ("U016", "drugs_837p.837", "P-U016-OXALIPLATIN-MG"),
    ("U017", "drugs_837p.837", "P-U017-DOSE"),
    ("U022", "drugs_837i.837", "I-U022-MUE-LINE"),
]

CLEAN_FILES = ("clean_837p.837", "clean_837i.837")


def test_every_rule_in_the_catalog_has_a_trigger(rules):
    assert set(TRIGGERS) == set(rules.catalog)


def test_every_rule_is_reported_by_code(rules):
    emitted = {rule for module in engine.CHECKS for rule in module.RULES} | {"S001", "S002", "S003"}
    assert emitted == set(rules.catalog)


@pytest.mark.parametrize("rule", sorted(TRIGGERS))
def test_rule_fires_on_the_claim_built_for_it(rule, samples):
    sample, claim_id, disposition = TRIGGERS[rule]
    claim = samples[sample].claim(claim_id)
    assert {f["rule"] for f in claim["findings"]} == {rule}, claim["findings"]
    assert claim["disposition"] == disposition


@pytest.mark.parametrize(("rule", "sample", "claim_id"), MORE_TRIGGERS)
def test_rule_fires_on_other_shapes(rule, sample, claim_id, samples):
    assert rule in samples[sample].rules_of(claim_id)


@pytest.mark.parametrize("rule", sorted(TRIGGERS))
def test_rule_stays_quiet_on_clean_claims(rule, samples):
    for sample in CLEAN_FILES:
        for claim in samples[sample].report["claims"]:
            assert rule not in {f["rule"] for f in claim["findings"]}, (sample, claim["claim_id"])


def test_clean_files_are_all_accepted_and_untouched(samples):
    for sample in CLEAN_FILES:
        result = samples[sample]
        assert all(c["disposition"] == "accepted" and not c["findings"] for c in result.report["claims"])
        assert result.corrected == (SAMPLES / sample).read_bytes()
        assert pyx12_valid(result.corrected)


def test_clean_samples_pass_pyx12():
    for sample in CLEAN_FILES:
        assert pyx12_valid((SAMPLES / sample).read_bytes()), sample


def test_warnings_never_reject(samples):
    for result in samples.values():
        for claim in result.report["claims"]:
            if claim["disposition"] == "rejected":
                assert any(f["severity"] == "error" and not f["fixed"] for f in claim["findings"])


def test_every_finding_says_where(samples):
    for result in samples.values():
        for claim in result.report["claims"]:
            for finding in claim["findings"]:
                assert (finding["segment"] and finding["segment_id"] is not None) or finding["rule"] == "S003"
                assert finding["message"].strip()


def test_a_shared_loop_error_rejects_every_claim_under_it(samples):
    result = samples["defects_837p.837"]
    for claim_id in ("P-S001-SHARED-A", "P-S001-SHARED-B"):
        claim = result.claim(claim_id)
        assert claim["disposition"] == "rejected"
        assert "subscriber loop" in claim["findings"][0]["message"]


def test_no_fix_reports_fixes_without_applying_them(scrub):
    result = scrub(SAMPLES / "defects_837p.837", FixMode.NONE)
    claim = result.claim("P-U003-MG-AS-UNITS")
    assert claim["disposition"] == "rejected"
    [finding] = [f for f in claim["findings"] if f["rule"] == "U003"]
    assert (finding["fixed"], finding["before"], finding["after"], finding["fix"]) == (False, "1800", "180", "safe")
    assert b"P-U003-MG-AS-UNITS" not in (result.corrected or b"")


def test_unsafe_fixes_apply_only_when_asked(scrub):
    default = scrub(SAMPLES / "defects_837p.837")
    assert default.claim("P-D003-Z51-ONLY")["disposition"] == "rejected"
    unsafe = scrub(SAMPLES / "defects_837p.837", FixMode.UNSAFE)
    claim = unsafe.claim("P-D003-Z51-ONLY")
    assert claim["disposition"] == "corrected"
    [finding] = claim["findings"]
    assert (finding["rule"], finding["fixed"], finding["after"]) == ("D003", True, "1:2")
    assert b"SV1*HC:J9032:JZ*10494.80*UN*200***1:2~" in unsafe.corrected
