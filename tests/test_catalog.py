"""The catalog documents every rule: the reference page, `rules list`, `rules show`, examples."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES
from test_rules import TRIGGERS

from scrubber.cli import cli
from scrubber.output.ruledocs import reference_page
from scrubber.rules.catalog import CATEGORIES


def test_the_reference_page_is_the_catalog(rules):
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert page == reference_page(rules), "docs/rules.md is out of date: run python tools/make_rules_page.py"


@pytest.mark.parametrize("rule_id", sorted(TRIGGERS))
def test_every_rule_is_documented_with_an_example_that_fires(rule_id, rules):
    rule = rules.rule(rule_id)
    for text in (rule.summary, rule.why, rule.location, rule.source, rule.message):
        assert text.strip()
    sample, claim_id = TRIGGERS[rule_id]
    text = (SAMPLES / sample).read_bytes().decode("latin-1")
    start = text.index(f"CLM*{claim_id}*")
    ends = [text.find(marker, start + 1) for marker in ("\nHL*", "\nCLM*", "\nSE*")]
    claim = text[start : min(e for e in ends if e > 0)]
    segments = [s + "~" for s in text.replace("~\n", "~").split("~") if s] + ["~"]
    for example in rule.example:
        assert example in segments, f"{rule_id}: example segment {example!r} not in {sample}"
    assert any(example in claim for example in rule.example if example != "~"), f"{rule_id}: none in {claim_id}"


def test_rules_list_and_show(rules):
    runner = CliRunner()
    listing = runner.invoke(cli, ["rules", "list"])
    assert listing.exit_code == 0
    assert listing.output.splitlines()[0].split()[:5] == ["id", "category", "severity", "SNIP", "fix"]
    assert len(listing.output.splitlines()) == 1 + len(rules.catalog)
    units = runner.invoke(cli, ["rules", "list", "--category", "units"])
    assert {line.split()[1] for line in units.output.splitlines()[1:]} == {"units"}
    shown = runner.invoke(cli, ["rules", "show", "u003"])
    assert shown.exit_code == 0
    for part in ("U003 units-entered-as-milligrams", "Why it matters:", "Where it looks:", "An example that fires",
                 "CTP****1800*ME~", "fix:       safe", "Source:", "RAC topic 0074"):
        assert part in shown.output
    assert runner.invoke(cli, ["rules", "show", "Z999"]).exit_code == 2


def test_figures_by_category_and_snip_level(rules):
    """The counts docs/rules.md states are derived from the catalog, never typed."""
    from collections import Counter

    page = reference_page(rules)
    by_category = Counter(r.category for r in rules.catalog.values())
    stated = ", ".join(f"{c} {n}" for c, n in sorted(by_category.items(), key=lambda cn: CATEGORIES.index(cn[0])))
    assert f"{len(rules.catalog)} rules. By category: {stated}." in page


def test_the_readme_types_no_rule_count():
    """readme_rule_count_stale: the README points at docs/rules.md instead of typing counts."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"\b\d+ rules: syntax \d+", readme)
    assert '"count": 33' not in readme


def test_the_readme_names_the_rules_that_fire(samples):
    """readme_names_wrong_rule: the opening example names the rules the samples show firing."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claims = {"N003": "P-N003-BELANTAMAB-NDC", "D004": "P-D004-MYELOMA-ONLY"}
    assert "belantamab's NDC on a J9032 line is N003; a myeloma-only diagnosis on J9032 is D004" in readme
    for rule, claim_id in claims.items():
        assert samples["defects_837p.837"].rules_of(claim_id) == {rule}


def test_every_rule_names_its_277ca_status_codes_from_the_code_list(rules):
    """277ca_codes_outside_catalog: the catalog holds each rule's 277CA status codes, all of them
    codes of list 508 the acknowledgment knows the wording of."""
    from scrubber.output.ack277 import STATUS_WORDING

    for rule in rules.catalog.values():
        assert rule.status_277ca and set(rule.status_277ca) <= set(STATUS_WORDING), rule.id
        assert rule.status_277ca_entity in (None, "PR", "NM101"), rule.id


def test_rules_show_and_the_reference_page_state_each_fix_class_and_why(rules):
    """fix_class_unexplained: a fixable rule says why its fix is safe or unsafe."""
    from scrubber.output.ruledocs import rule_page

    page = reference_page(rules)
    for rule in rules.catalog.values():
        if rule.fix == "none":
            continue
        why = f"Why {rule.fix}: {rule.fix_why}"
        assert rule.fix_why and why in rule_page(rule, rules) and why in page, rule.id
