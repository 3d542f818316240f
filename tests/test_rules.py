"""Each defect sample claim breaks the rule its id names, clean claims stay clean; every rule has a
case file (tests/rule_cases/) and one emitter."""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLES, TODAY
from pyx12_check import pyx12_valid
from test_rule_cases import ALL_CASES

import scrubber
from scrubber import RunContext
from scrubber.rules import engine
from scrubber.rules.engine import FixMode

DEFECT_FILES = ("defects_837p.837", "defects_837i.837")
_RULE_ID = re.compile(r"^[A-Z][0-9]{3}$")


def _defect_claims() -> list[tuple[str, str, str]]:
    """(rule, sample, claim id) of every defect claim: its id names the rule it is built to break
    (P-U003-MG-AS-UNITS breaks U003), so no map is kept by hand. The first claim of a pair that
    only sets up the second (P-U008-WINDOW-A) breaks nothing of its own."""
    found = []
    for sample in DEFECT_FILES:
        text = (SAMPLES / sample).read_bytes().decode("latin-1")
        for claim_id in re.findall(r"CLM\*([^*]+)\*", text):
            rule = claim_id.split("-")[1]
            if _RULE_ID.match(rule) and not (claim_id.endswith("-A") and rule in ("U008", "U009")):
                found.append((rule, sample, claim_id))
    return found


DEFECT_CLAIMS = _defect_claims()
# rule -> (sample file, the first claim built to break it): where `rules show` examples come from.
TRIGGERS = {}
for _rule, _sample, _claim_id in DEFECT_CLAIMS:
    TRIGGERS.setdefault(_rule, (_sample, _claim_id))

CLEAN_FILES = ("clean_837p.837", "clean_837i.837")
# Rules no sample claim or case file can trigger, and where they are tested instead.
NOT_ON_SAMPLES = {"S006": "tests/test_fixes.py (the fix loop's pass limit, lowered for the test)"}


def test_every_rule_in_the_catalog_has_a_case_file(rules):
    """Each rule has its case file (tests/rule_cases/, run by tests/test_rule_cases.py, with a
    failing and a passing case): the case files, not a hand-kept map, say what triggers a rule."""
    cased = {rule for rule, _ in ALL_CASES}
    assert cased | set(NOT_ON_SAMPLES) == set(rules.catalog)


def test_every_rule_has_exactly_one_emitter(rules):
    """Each check declares the ids it emits (RULES); every catalog id has one emitter, and every
    emitter's id is in the catalog."""
    from collections import Counter

    from scrubber.rules import syntax

    declared = Counter(rule for module in (*engine.CHECKS, engine, syntax) for rule in module.RULES)
    assert set(declared) == set(rules.catalog)
    assert [rule for rule, count in declared.items() if count > 1] == []


@pytest.mark.parametrize(("rule", "sample", "claim_id"), DEFECT_CLAIMS)
def test_each_defect_claim_breaks_the_rule_its_id_names(rule, sample, claim_id, samples):
    claim = samples[sample].claim(claim_id)
    assert {f["rule"] for f in claim["findings"]} == {rule}, claim["findings"]


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


def test_syntax_findings_come_from_the_rules_layer(samples, rules, monkeypatch):
    """syntax_rules_outside_rules: every S001-S003 the pipeline reports is made by
    scrubber.rules.syntax, like every other rule's finding."""
    from scrubber.rules import syntax

    made: list[object] = []
    original = syntax.syntax_finding

    def recording(*args, **kwargs):
        finding = original(*args, **kwargs)
        made.append(finding)
        return finding

    monkeypatch.setattr(syntax, "syntax_finding", recording)
    result = scrubber.scrub((SAMPLES / "defects_837p.837").read_bytes(), rules=rules, run=RunContext.new(TODAY))
    reported = [f for f in result.findings if f.rule.id in syntax.RULES]
    assert len(reported) >= 4  # S001 (three claims), S002, S003
    assert all(any(f is m for m in made) for f in reported)
