"""The rule catalog for people: one rule's page, the catalog table, the reference page in
docs/rules.md, and the merged rule configuration with where each value came from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..rules.catalog import CATEGORIES, Rule
from ..rules.layers import Merged, describe_layer
from ..rules.reference import NO_POLICY
from ..rules.ruleset import RuleSet

SAMPLE_NOTE = "claims in edi_samples/"


def fix_text(rule: Rule) -> str:
    text = {
        "none": "none: the finding says what to change at the source",
        "safe": "safe: applied by default (not with --no-fix); the claim is checked again after it",
        "unsafe": "unsafe: reported with the value it would write; applied only with --unsafe-fixes",
    }[rule.fix]
    return f"{text}. Why {rule.fix}: {rule.fix_why}" if rule.fix_why else text


def rule_page(rule: Rule, rules: RuleSet | None = None) -> str:
    """What `scrubber rules show ID` prints."""
    state = ""
    if rules is not None:
        enabled, severity = rules.rule_state(rule.id, NO_POLICY)
        if not enabled:
            state = " (turned off by the site rules)"
        elif severity != rule.severity:
            state = f" (made {severity} by the site rules)"
    lines = [
        f"{rule.id} {rule.name}",
        "",
        f"  {rule.summary}",
        "",
        f"category:  {rule.category}",
        f"severity:  {rule.severity}{state}",
        f"SNIP:      level {rule.snip}",
        f"fix:       {fix_text(rule)}",
        "",
        "Why it matters:",
        f"  {rule.why}",
        "",
        "Where it looks:",
        f"  {rule.location}",
        "",
        f"An example that fires ({SAMPLE_NOTE}):",
        *(f"  {segment}" for segment in rule.example),
        "",
        "What the finding says:",
        f"  {rule.message}",
        "",
        "Source:",
        f"  {rule.source}",
    ]
    return "\n".join(lines)


def in_order(rules: RuleSet) -> list[Rule]:
    """The rules by category (in the catalog's fixed order), then id."""
    return sorted(rules.catalog.values(), key=lambda r: (CATEGORIES.index(r.category), r.id))


def catalog_rows(rules: RuleSet, category: str | None = None) -> list[tuple[str, ...]]:
    rows = []
    for rule in in_order(rules):
        if category is not None and rule.category != category:
            continue
        enabled, severity = rules.rule_state(rule.id, NO_POLICY)
        rows.append((rule.id, rule.category, severity if enabled else "off", str(rule.snip), rule.fix, rule.summary))
    return rows


def reference_page(rules: RuleSet) -> str:
    """docs/rules.md: every rule of the built-in catalog, one section each."""
    by_category = Counter(r.category for r in rules.catalog.values())
    by_snip = Counter(r.snip for r in rules.catalog.values())
    out = [
        "# Rule reference",
        "",
        "Generated from `rules/catalog.toml` by `python tools/make_rules_page.py`; a test fails when",
        "this page and the catalog disagree. `scrubber rules show ID` prints the same for one rule.",
        "",
        f"{len(rules.catalog)} rules. By category: "
        + ", ".join(f"{c} {by_category[c]}" for c in CATEGORIES if by_category[c])
        + ". By WEDI SNIP level: " + ", ".join(f"{level}: {by_snip[level]}" for level in sorted(by_snip)) + ".",
        "",
        "| id | name | category | severity | SNIP | fix | summary |",
        "|---|---|---|---|---|---|---|",
    ]
    out.extend(
        f"| [{rule.id}](#{rule.id.lower()}) | {rule.name} | {rule.category} | {rule.severity} | "
        f"{rule.snip} | {rule.fix} | {_cell(rule.summary)} |"
        for rule in in_order(rules)
    )
    for category in CATEGORIES:
        members = [r for r in in_order(rules) if r.category == category]
        if not members:
            continue
        out += ["", f"## {category}"]
        for rule in members:
            out += [
                "",
                f"### {rule.id}",
                "",
                f"**{rule.name}**: {rule.summary}.",
                "",
                f"- severity: {rule.severity}; WEDI SNIP level {rule.snip}",
                f"- fix: {fix_text(rule)}",
                f"- where: {rule.location}",
                f"- message: `{rule.message}`",
                f"- why: {rule.why}",
                f"- source: {rule.source}",
                "",
                f"Fires on ({SAMPLE_NOTE}):",
                "",
                "```",
                *rule.example,
                "```",
            ]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "/")


def config_text(rules: RuleSet) -> str:
    """What `scrubber rules show-config` prints: the merged rule data, each value with its file."""
    builtin = rules.directory

    def source(path: Path) -> str:
        return describe_layer(path, builtin)

    out = ["# The rule configuration in force: the built-in rules, then each site layer on top.",
           "# Layers, first to last:"]
    out += [f"#   {source(layer)}" if layer != builtin else f"#   built-in ({layer})" for layer in rules.layers]
    out += ["", "[settings]"]
    disabled_in = {source(p) for k, p in rules.settings_sources.items() if k.startswith("disabled.")}
    where = ", ".join(sorted(disabled_in)) or "built-in settings.toml"
    out.append(_line("disabled", rules.settings["disabled"], where))
    for rule_id, level in rules.settings["severity"].items():
        out.append(_line(f"severity.{rule_id}", level, source(rules.settings_sources[f"severity.{rule_id}"])))
    out += _merged("payer", rules.payers.merged, source)
    out += _merged("drug", rules.drugs.merged, source, skip=("code", "product"), summarise=("code", "product"))
    out += _merged("modifier", rules.modifiers_merged, source)
    out += _merged("code_table", rules.tables, source)
    out += _generated(rules)
    return "\n".join(out) + "\n"


def _generated(rules: RuleSet) -> list[str]:
    """The values a drug profile sets over those generated from CMS's files (issue 10), in force today."""
    import datetime as dt

    from ..rules.cms_data import profile_overrides

    out = ["", "# Drug profiles (drugs.toml) override the values generated from CMS's files for their codes:"]
    out += [_line(f'generated."{item.code}".{item.key}', item.profile, f"drugs.toml (overrides CMS: {item.generated})")
            for item in profile_overrides(rules.drugs, dt.date.today())]
    return out


def _merged(kind: str, merged: Merged, source: Any, skip: tuple[str, ...] = (),
            summarise: tuple[str, ...] = ()) -> list[str]:
    out = []
    for name, entry in merged.entries.items():
        out += ["", f'[{kind}."{name}"]']
        for key, value in entry.items():
            if key in summarise:
                value = [item.get("hcpcs") or item.get("ndc") for item in value]
            elif key in skip:
                continue
            out.append(_line(key, value, source(merged.source_of(name, key))))
    return out


def _line(key: str, value: Any, where: str) -> str:
    text = f"{key} = {_toml(value)}"
    return f"{text:<60} # {where}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)
