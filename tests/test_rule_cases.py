"""Per-rule case files: tests/rule_cases/<RULE>.toml, run by this one generic test.

Each file holds cases for one rule (as sqlfluff's std_rule_cases do): `fail` (the rule fires on
the claim), `pass` (it stays quiet) and `fix` (it fires with its catalog fix class, and the fix
writes what it should). A case describes one or more claims in the terms of
tools/make_samples.py (the claim's keys and its `line` list), rendered into a real 837 and scrubbed
whole, optionally under a site layer (`site`: file name -> text). Regression cases are named
after the defect they cover.

Case keys:
  name        the case's name (a defect's name for a regression case)
  kind        fail | pass | fix
  file        837P (default) or 837I
  mode        safe (default), unsafe or none: the fix mode
  site        {"settings.toml" = "...", "payers.toml" = "..."}: a site layer under the built-in rules
  claim       [[case.claim]] tables: make_samples Claim keys, with [[case.claim.line]] Line keys;
              the last claim is the one the expectation speaks of (or expect.claim)
  expect      severity, disposition, fixed, after, message (substrings), rules (the exact set of
              rules on the claim), written / not_written (text in the corrected file)
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, scrub_bytes

from scrubber.rules.engine import FixMode
from scrubber.rules.ruleset import load_rules

CASES = Path(__file__).resolve().parent / "rule_cases"
KINDS = ("fail", "pass", "fix")


def _tool():
    name = "make_samples"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "make_samples.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_cases() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(CASES.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        found.extend((path.stem, case) for case in data.get("case", []))
    return found


ALL_CASES = load_cases()


def render_case(rule: str, case: dict) -> bytes:
    tool = _tool()
    claims = []
    for i, spec in enumerate(case["claim"]):
        spec = dict(spec)
        lines = [tool.Line(**{k: tuple(v) if isinstance(v, list) else v for k, v in line.items()})
                 for line in spec.pop("line")]
        spec.setdefault("claim_id", f"{rule}-CASE-{i + 1}")
        for key in ("diagnoses", "extra_2300"):
            if key in spec:
                spec[key] = tuple(spec[key])
        if "payer" in spec:
            spec["payer"] = tuple(spec["payer"])
        claims.append(tool.Claim(wrong=case["name"], lines=lines, **spec))
    sample = tool.SampleFile(f"{rule}.837", case.get("file", "837P"), case["name"], claims)
    return tool.render(sample, 900).encode("latin-1")


def scrub_case(rule: str, case: dict, tmp_path: Path):
    layers = []
    if "site" in case:
        site = tmp_path / "site"
        site.mkdir()
        for name, text in case["site"].items():
            (site / name).write_text(text, encoding="utf-8")
        layers.append(site)
    mode = FixMode(case.get("mode", "safe"))
    return scrub_bytes(render_case(rule, case), load_rules(layers), mode)


def test_case_files_name_catalog_rules_and_say_what_they_test(rules):
    assert ALL_CASES, "no case files found"
    for rule, case in ALL_CASES:
        assert rule in rules.catalog, f"{rule}.toml: no such rule in the catalog"
        assert case.get("kind") in KINDS, (rule, case.get("name"))
        assert case.get("name") and case.get("claim"), (rule, case)


def test_every_rule_with_a_case_file_has_a_failing_and_a_passing_case():
    kinds: dict[str, set[str]] = {}
    for rule, case in ALL_CASES:
        kinds.setdefault(rule, set()).add("fail" if case["kind"] == "fix" else case["kind"])
    for rule, seen in kinds.items():
        assert seen == {"fail", "pass"}, f"{rule}.toml needs a fail (or fix) case and a pass case"


@pytest.mark.parametrize(("rule", "case"), ALL_CASES, ids=[f"{r}:{c['name']}" for r, c in ALL_CASES])
def test_rule_case(rule, case, tmp_path, rules):
    result = scrub_case(rule, case, tmp_path)
    expect = case.get("expect", {})
    claims = result.report["claims"]
    target = result.claim(expect["claim"]) if "claim" in expect else claims[-1]
    # Whatever the case, every finding's fix is of its rule's catalog class, and a rule whose
    # catalog says no fix never offers one (the catalog is the one source of fix classes).
    for claim in claims:
        for finding in claim["findings"]:
            declared = rules.rule(finding["rule"]).fix
            assert finding["fix"] in (declared, None) and (declared != "none" or finding["fix"] is None), finding
    found = [f for f in target["findings"] if f["rule"] == rule]
    if case["kind"] == "pass":
        assert not [f for c in claims for f in c["findings"] if f["rule"] == rule], target["findings"]
    else:
        assert found, f"{rule} did not fire: {target['findings']}"
        finding = found[0]
        if "severity" in expect:
            assert finding["severity"] == expect["severity"], finding
        for text in expect.get("message", []):
            assert text in finding["message"], finding["message"]
        if case["kind"] == "fix":
            assert finding["fix"] == rules.rule(rule).fix != "none", finding
        for key in ("fixed", "after", "before"):
            if key in expect:
                assert finding[key] == expect[key], finding
    if "rules" in expect:
        assert {f["rule"] for f in target["findings"]} == set(expect["rules"]), target["findings"]
    if "disposition" in expect:
        assert target["disposition"] == expect["disposition"], target
    corrected = (result.corrected or b"").decode("latin-1")
    for text in expect.get("written", []):
        assert text in corrected
    for text in expect.get("not_written", []):
        assert text not in corrected


def test_catalog_examples_of_rules_without_a_sample_claim_are_in_a_failing_case(rules):
    """A rule documented by its case files shows, in `rules show`, segments of a case that fires."""
    from test_rules import TRIGGERS

    for rule_id in sorted({rule for rule, _ in ALL_CASES} - set(TRIGGERS)):
        rendered = [render_case(rule, case).decode("latin-1") for rule, case in ALL_CASES
                    if rule == rule_id and case["kind"] != "pass"]
        for example in rules.rule(rule_id).example:
            assert any(example in text for text in rendered), f"{rule_id}: example {example!r} in no failing case"
