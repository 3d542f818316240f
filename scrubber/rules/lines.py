"""Helpers the checks share: which lines bill a drug, and numbers read off a line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from ..model.claim import Claim, ServiceLine
from . import cms_data
from .reference import Drug, DrugCode
from .ruleset import RuleSet


class DrugLine(NamedTuple):
    """A line billing a profiled drug, as the checks read it. (A named tuple: made for every such
    line in every check pass, and a frozen dataclass costs several times as much to make.)"""

    line: ServiceLine
    drug: Drug
    code: DrugCode
    date: dt.date | None
    is_discard: bool  # JW: the amount discarded, not given (a dozen checks ask)
    units: Decimal | None  # units_of(line): read once, where the units, vial, ceiling and history checks ask


def is_hcpcs(line: ServiceLine) -> bool:
    return line.qualifier is not None and line.qualifier.value == "HC" and line.code is not None


def bills_a_drug(line: ServiceLine, rules: RuleSet) -> bool:
    """A line bills a drug when its code has a drug profile, is a J-code, is a drug in CMS's files
    on its date of service (Q5xxx biosimilars, C9xxx, A9xxx, vaccines and immune globulins), or it
    carries an NDC."""
    if line.ndc is not None:
        return True
    if not is_hcpcs(line):
        return False
    code = line.procedure
    if rules.drugs.by_code(code) is not None or code.startswith(rules.drug_code_prefixes):
        return True
    return cms_data.cms_drug(code, line.service_date.start if line.service_date else None) is not None


def profiled_lines(claim: Claim, rules: RuleSet) -> Iterator[DrugLine]:
    """The lines whose HCPCS code has a drug profile in rules/drugs.toml."""
    by_code = rules.drugs.by_code
    for line in claim.lines:
        if not is_hcpcs(line):
            continue
        found = by_code(line.code.value)  # type: ignore[union-attr]
        if found is not None:
            yield DrugLine(line, found[0], found[1], claim.line_date(line), "JW" in line.modifier_codes,
                           units_of(line))


def drug_lines_of(claim: Claim, rules: RuleSet) -> list[DrugLine]:
    """profiled_lines as a list (Findings.drug_lines keeps it for the checks of one pass)."""
    return list(profiled_lines(claim, rules))


def units_of(line: ServiceLine) -> Decimal | None:
    return line.units.decimal() if line.units is not None else None


def dose_mg(line: ServiceLine) -> Decimal | None:
    """The dose the NDC quantity states, in milligrams, when its unit is ME or GR."""
    if line.ndc_quantity is None or line.ndc_unit is None:
        return None
    quantity = line.ndc_quantity.decimal()
    if quantity is None or quantity <= 0:
        return None
    if line.ndc_unit.value == "ME":
        return quantity
    if line.ndc_unit.value == "GR":
        return quantity * 1000
    return None


def round_up(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_CEILING)


def round_down(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_FLOOR)


def plain(value: Decimal) -> str:
    """A number as X12 and people write it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def day(date: dt.date | None) -> str:
    return date.isoformat() if date is not None else "an unknown date"
