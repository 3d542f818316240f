"""The catalog documents every rule: the reference page, `rules list`, `rules show`, examples."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES
from test_rules import TRIGGERS

from scrubber.cli import cli
from scrubber.output.ruledocs import reference_page


def test_the_reference_page_is_the_catalog(rules):
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert page == reference_page(rules), "docs/rules.md is out of date: run python tools/make_rules_page.py"


@pytest.mark.parametrize("rule_id", sorted(TRIGGERS))
def test_every_rule_is_documented_with_an_example_that_fires(rule_id, rules):
    rule = rules.rule(rule_id)
    for text in (rule.summary, rule.why, rule.location, rule.source, rule.message):
        assert text.strip()
    sample, claim_id, _ = TRIGGERS[rule_id]
    text = (SAMPLES / sample).read_bytes().decode("latin-1")
    start = text.index(f"CLM*{claim_id}*")
    ends = [text.find(marker, start + 1) for marker in ("\nHL*", "\nCLM*", "\nSE*")]
    claim = text[start : min(e for e in ends if e > 0)]
    segments = [s + "~" for s in text.replace("~\n", "~").split("~") if s] + ["~"]
    for example in rule.example:
        assert example in segments, f"{rule_id}: example segment {example!r} not in {sample}"
    assert any(example in claim for example in rule.example if example != "~"), f"{rule_id}: none in {claim_id}"


def test_rules_list_and_show():
    runner = CliRunner()
    listing = runner.invoke(cli, ["rules", "list"])
    assert listing.exit_code == 0
    assert listing.output.splitlines()[0].split()[:5] == ["id", "category", "severity", "SNIP", "fix"]
    assert len(listing.output.splitlines()) == 1 + len(TRIGGERS)
    units = runner.invoke(cli, ["rules", "list", "--category", "units"])
    assert {line.split()[1] for line in units.output.splitlines()[1:]} == {"units"}
    shown = runner.invoke(cli, ["rules", "show", "u003"])
    assert shown.exit_code == 0
    for part in ("U003 units-entered-as-milligrams", "Why it matters:", "Where it looks:", "An example that fires",
                 "CTP****1800*ME~", "fix:       safe", "Source:", "RAC topic 0074"):
        assert part in shown.output
    assert runner.invoke(cli, ["rules", "show", "Z999"]).exit_code == 2


def test_figures_by_category_and_snip_level(rules):
    """The counts the notes report (docs/rules.md states them too)."""
    page = reference_page(rules)
    assert f"{len(rules.catalog)} rules. By category: syntax 5, balancing 2, code_set 10, units 17, modifier 8" in page
