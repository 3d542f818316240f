"""Units on drug lines: whole and positive, consistent with the dose, the vials and the label."""

from __future__ import annotations

from decimal import Decimal

from ..model.claim import Claim
from .findings import Findings
from .lines import DrugLine, bills_a_drug, day, dose_mg, plain, round_down, round_up, units_of
from .ruleset import RuleSet

RULES = ("U001", "U002", "U003", "U004", "U005", "U006", "U007", "U010", "U011")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for line in claim.lines:
        if not bills_a_drug(line, rules):
            continue
        units = units_of(line)
        code = line.procedure or "the drug"
        if units is None or units <= 0:
            out.add("U001", line.units, line, segment=line.procedure_segment, seg_id=line.procedure_seg_id,
                    units=line.units.value if line.units else "", code=code,
                    unit=_unit_name(line.procedure, rules))
        elif units != units.to_integral_value():
            # CMS directs administered doses up to the next unit; discarded (JW) amounts round
            # down, and a JW line is at least one unit (drug-lines.md §3).
            discard = "JW" in line.modifier_codes
            rounded = plain(max(round_down(units), Decimal(1)) if discard else round_up(units))
            direction = "round down: discarded amounts round down" if discard \
                else "round up: administered doses round up"
            out.add("U002", line.units, line, fix=out.set_value(line.units, rounded),
                    units=plain(units), code=code, rounded=rounded, direction=direction)
    drug_lines = out.drug_lines
    for item in drug_lines:
        _dose(item, out)
        _discard_vial(item, out)
    _vials_and_ceiling(drug_lines, out)


def _unit_name(code: str, rules: RuleSet) -> str:
    found = rules.drugs.by_code(code)
    return found[1].billing_unit if found else "billing"


def _dose(item: DrugLine, out: Findings) -> None:
    """Units against the NDC quantity when CTP05 gives milligrams (ME) or grams (GR)."""
    line, unit_mg = item.line, item.code.billing_unit_mg
    units, dose = item.units, dose_mg(line)
    if units is None or dose is None or units <= 0 or units != units.to_integral_value():
        return
    per_unit = dose / unit_mg
    # Administered doses round up; discarded amounts (JW) round down.
    expected = round_down(per_unit) if item.is_discard else round_up(per_unit)
    if expected <= 0 or units == expected:
        return
    values = {"units": plain(units), "code": line.procedure, "dose": plain(dose), "unit": item.code.billing_unit,
              "expected": plain(expected), "rounding": "down" if item.is_discard else "up"}
    ceiling = item.drug.plausible_units_per_day
    if units == dose and ceiling is not None and units > ceiling >= expected:
        # The units cannot be billing units (above the label's daily ceiling), and read as
        # milligrams they are a plausible dose: only one reading is possible, so the fix is safe.
        out.add("U003", line.units, line, fix=out.set_value(line.units, plain(expected)), ceiling=ceiling, **values)
    else:
        # Units equal to CTP04 below the ceiling may as well be CTP04 copied from the units:
        # which side is wrong is unknown, so the fix is unsafe (U004).
        hint = "; CTP04 may have been copied from the units" if units == dose else ""
        out.add("U004", line.units, line, fix=out.set_value(line.units, plain(expected)), hint=hint, **values)


def _vial_mg(item: DrugLine, out: Findings) -> Decimal | None:
    """The vial size of the line's product (from its NDC), or the drug's only verified size."""
    line = item.line
    if line.ndc is not None:
        found = out.rules.drugs.by_ndc(line.ndc.value)
        if found is not None and found[0] is item.drug:
            product = found[1]
            return product.vial_mg if product.vial_verified else None
    sizes = item.drug.vial_sizes()
    return sizes[0] if len(sizes) == 1 else None


def _discard_vial(item: DrugLine, out: Findings) -> None:
    if not item.is_discard or not item.drug.single_dose:
        return
    units, vial = item.units, _vial_mg(item, out)
    if units is None or vial is None or units <= 0:
        return
    discarded = units * item.code.billing_unit_mg
    if discarded >= vial:
        out.add("U005", item.line.units, item.line, discarded=plain(discarded),
                code=item.line.procedure, vial=plain(vial))


def _vials_and_ceiling(drug_lines: list[DrugLine], out: Findings) -> None:
    by_day: dict[tuple[str, object], list[DrugLine]] = {}
    for item in drug_lines:
        if item.units is not None:
            key = (item.drug.name, item.date)
            if key in by_day:
                by_day[key].append(item)
            else:
                by_day[key] = [item]
    for items in by_day.values():
        _whole_vials(items, out)
        _ceiling(items, out)


def _whole(total: Decimal, vial: Decimal, unit_mg: Decimal) -> bool:
    """Whole vials, within one billing unit (units are rounded to whole units)."""
    remainder = total % vial
    return total > 0 and (remainder < unit_mg or vial - remainder < unit_mg)


def _mg(items: list[DrugLine]) -> Decimal:
    total = Decimal(0)
    for item in items:  # (a loop, not sum over a generator: most days have one or two lines)
        total += item.units * item.code.billing_unit_mg  # type: ignore[operator]
    return total


def _whole_vials(items: list[DrugLine], out: Findings) -> None:
    if not items[0].drug.single_dose:
        return
    given_items, discards = [], []
    for item in items:
        (discards if item.is_discard else given_items).append(item)
    if not discards:
        _no_discard(items, out)
        return
    vial = _vial_mg(discards[-1], out)
    if vial is None:
        return
    given, discarded = _mg(given_items), _mg(discards)
    unit_mg = discards[-1].code.billing_unit_mg
    if _whole(given + discarded, vial, unit_mg):
        return
    last = discards[-1].line
    values = {"code": last.procedure, "date": day(discards[-1].date), "given": plain(given),
              "discarded": plain(discarded), "total": plain(given + discarded), "vial": plain(vial)}
    vials = round_up(given / vial)
    leftover = vials * vial - given
    if given > 0 and discarded < leftover:
        # Less discarded than the opened vials held: legitimate when the rest went to another
        # patient (JW is the amount not given to any patient): a warning, never an error.
        out.add("U010", last.units, last, vials=plain(vials), leftover=plain(leftover), **values)
    else:
        out.add("U006", last.units, last, **values)


def _no_discard(items: list[DrugLine], out: Findings) -> None:
    """JZ says nothing was discarded: the dose should then fill whole vials of some size."""
    if not any("JZ" in i.line.modifier_codes for i in items):
        return
    sizes = [v for v in (_vial_mg(i, out) for i in items) if v is not None] or items[0].drug.vial_sizes()
    given, unit_mg = _mg(items), items[-1].code.billing_unit_mg
    if not sizes or given <= 0:
        return
    for vial in sizes:
        if _whole(given, vial, unit_mg):
            return
    last = items[-1]
    units = sum((i.units for i in items), Decimal(0))  # type: ignore[misc]
    arithmetic = "; ".join(f"{plain((given / vial).quantize(Decimal('0.01')))} x {plain(vial)} mg vials"
                           for vial in sorted(set(sizes)))
    out.add("U011", last.line.units, last.line, units=plain(units), code=last.line.procedure, date=day(last.date),
            given=plain(given), arithmetic=arithmetic)


def _ceiling(items: list[DrugLine], out: Findings) -> None:
    drug = items[0].drug
    ceiling = drug.plausible_units_per_day
    if ceiling is None:
        return
    total = sum((i.units for i in items), Decimal(0))  # type: ignore[misc]
    if total <= ceiling:
        return
    last = items[-1]
    unit_mg = last.code.billing_unit_mg
    fix, hint = None, ""
    if len(items) == 1:
        as_units = total / unit_mg
        if as_units == as_units.to_integral_value() and 0 < as_units <= ceiling:
            # The count reads as milligrams: suggest it in billing units, applied only on request.
            hint = f"; if {plain(total)} is milligrams, that is {plain(as_units)} units"
            fix = out.set_value(last.line.units, plain(as_units))
    out.add("U007", last.line.units, last.line, fix=fix, units=plain(total), code=last.line.procedure,
            date=day(last.date), ceiling=ceiling, basis=drug.plausible_units_basis or "label", hint=hint)
