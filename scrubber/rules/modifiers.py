"""Modifiers on service lines: JW/JZ for Medicare, route, effective dates, repeats."""

from __future__ import annotations

from ..model.claim import Claim, ServiceLine
from .findings import Findings
from .lines import day, is_hcpcs, profiled_lines
from .ruleset import RuleSet

RULES = ("M001", "M002", "M003", "M004", "M005")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for line in claim.lines:
        if not is_hcpcs(line) or not line.modifiers:
            continue
        codes = line.modifier_codes
        _repeats(line, out)
        if "JW" in codes and "JZ" in codes:
            out.add("M002", line.modifiers[codes.index("JZ")], line, code=line.procedure)
        date = claim.line_date(line)
        for modifier in line.modifiers:
            known = rules.modifiers.get(modifier.value)
            if known and known.valid_from and date is not None and date < known.valid_from:
                out.add("M004", modifier, line, modifier=modifier.value, date=day(date),
                        valid_from=known.valid_from.isoformat())
    _route(claim, rules, out)
    _jw_jz_required(claim, rules, out)


def _repeats(line: ServiceLine, out: Findings) -> None:
    seen: list[str] = []
    for modifier in line.modifiers:
        if modifier.value in seen:
            kept = list(dict.fromkeys(line.modifier_codes))
            d = out.delimiters
            parts = modifier.segment.text.split(d.element)[modifier.element].split(d.component)
            # Rebuild the composite: qualifier, code, the modifiers once each, then the rest.
            rebuilt = parts[:2] + kept + [""] * (4 - len(kept)) + parts[6:]
            while rebuilt and rebuilt[-1] == "":
                rebuilt.pop()
            value = d.component.join(rebuilt)
            fix = out.set_element(modifier.segment, modifier.element, value, "safe", shown=value)
            out.add("M005", modifier, line, fix=fix, modifier=modifier.value, code=line.procedure)
            return
        seen.append(modifier.value)


def _route(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for item in profiled_lines(claim, rules):
        for modifier in item.line.modifiers:
            known = rules.modifiers.get(modifier.value)
            if known and known.kind == "route" and known.route not in item.drug.route:
                out.add("M003", modifier, item.line, modifier=modifier.value, meaning=known.meaning.lower(),
                        code=item.line.procedure, routes="/".join(item.drug.route))


def _jw_jz_required(claim: Claim, rules: RuleSet, out: Findings) -> None:
    policy = rules.payers.for_class(claim.payer_class.value if claim.payer_class else None)
    if policy is None or policy.jw_jz_required_from is None:
        return
    items = list(profiled_lines(claim, rules))
    discarded = {item.drug.name for item in items if item.is_discard}
    for item in items:
        codes = item.line.modifier_codes
        if not item.drug.single_dose or item.date is None or item.date < policy.jw_jz_required_from:
            continue
        if "JW" in codes or "JZ" in codes or item.drug.name in discarded:
            continue
        out.add("M001", item.line.code, item.line, code=item.line.procedure, date=day(item.date))
