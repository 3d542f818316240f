"""NDCs on drug lines (loop 2410): form, the drug they name, payer requirements, quantity."""

from __future__ import annotations

import re

from ..model.claim import Claim, ServiceLine, is_digits
from .findings import Findings
from .lines import bills_a_drug, is_hcpcs
from .ruleset import RuleSet

RULES = ("N001", "N002", "N003", "N004", "N005")

NDC_UNITS = ("F2", "GR", "ME", "ML", "UN")

# The 10-digit forms printed on packages, and how each pads to 5-4-2.
_HYPHENATED = (
    (re.compile(r"^(\d{4})-(\d{4})-(\d{2})$"), "4-4-2", lambda a, b, c: f"0{a}{b}{c}"),
    (re.compile(r"^(\d{5})-(\d{3})-(\d{2})$"), "5-3-2", lambda a, b, c: f"{a}0{b}{c}"),
    (re.compile(r"^(\d{5})-(\d{4})-(\d{1})$"), "5-4-1", lambda a, b, c: f"{a}{b}0{c}"),
    (re.compile(r"^(\d{5})-(\d{4})-(\d{2})$"), "hyphenated 5-4-2", lambda a, b, c: f"{a}{b}{c}"),
)


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    policy = out.policy
    for line in claim.lines:
        if line.ndc is None and line.ndc_qualifier is None:
            if policy.ndc_required and is_hcpcs(line) and bills_a_drug(line, rules):
                out.add("N004", line.code, line, payer=policy.name, code=line.procedure)
            continue
        ndc11 = _form(line, out)
        if ndc11 is not None:
            _other_drug(line, ndc11, rules, out)
        _quantity(line, out)


def _form(line: ServiceLine, out: Findings) -> str | None:
    """Check LIN02/LIN03; return the 11-digit NDC when there is one (after a safe fix)."""
    if line.ndc_qualifier is None:
        out.add("N001", line.ndc, line, problem="LIN02 is missing")
        return None
    if line.ndc_qualifier.value != "N4":
        # The guide allows other product ids in LIN02 (EN, EO, HI, ON, UK, UP); N4 only is a payer's rule.
        wanted = out.policy.ndc_qualifiers
        if wanted and line.ndc_qualifier.value not in wanted:
            out.add("N001", line.ndc_qualifier, line,
                    problem=f"LIN02 is {line.ndc_qualifier.value}; {out.policy.name} reads only {'/'.join(wanted)}")
        return None
    ndc = line.ndc
    if ndc is None:
        out.add("N001", line.ndc_qualifier, line, problem="LIN03 (the NDC) is missing")
        return None
    value = ndc.value
    if len(value) == 11 and is_digits(value):
        return value
    for pattern, form, pad in _HYPHENATED:
        match = pattern.match(value)
        if match:
            padded = pad(*match.groups())
            out.add("N002", ndc, line, fix=out.set_value(ndc, padded), ndc=value, form=form, padded=padded)
            return padded
    out.add("N001", ndc, line, problem=f"LIN03 {value!r} is not an 11-digit NDC")
    return None


def _other_drug(line: ServiceLine, ndc11: str, rules: RuleSet, out: Findings) -> None:
    if not is_hcpcs(line) or line.procedure in rules.hcpcs.unclassified:
        return
    code = line.procedure
    line_drug = rules.drugs.by_code(code)
    profiled = rules.drugs.by_ndc(ndc11)
    if profiled is not None:
        drug, product = profiled
        if not product.verified:
            return
        codes, name = drug.hcpcs_codes, drug.label
    else:
        entries = rules.ndc_crosswalk.product(ndc11)
        # Only a drug the scrubber has a profile for is checked against the crosswalk:
        # the crosswalk lists one code per NDC, and older or alternative codes are common.
        if not entries or line_drug is None:
            return
        codes, name = tuple(dict.fromkeys(e.hcpcs for e in entries)), entries[0].drug_name
    if code in codes:
        return
    about = f" ({line_drug[0].name})" if line_drug else ""
    out.add("N003", line.ndc, line, ndc=ndc11, drug=name, codes=" or ".join(codes), code=code, about=about)


def _quantity(line: ServiceLine, out: Findings) -> None:
    quantity = line.ndc_quantity.decimal() if line.ndc_quantity else None
    if quantity is None or quantity <= 0:
        shown = repr(line.ndc_quantity.value) if line.ndc_quantity else "missing"
        out.add("N005", line.ndc_quantity or line.ndc, line, problem=f"the NDC quantity CTP04 is {shown}")
    elif line.ndc_unit is None or line.ndc_unit.value not in NDC_UNITS:
        shown = repr(line.ndc_unit.value) if line.ndc_unit else "missing"
        out.add("N005", line.ndc_unit or line.ndc_quantity, line, problem=f"the NDC unit CTP05-01 is {shown}")
