"""Checks for every drug in CMS's files: the NDC against the ASP crosswalk, units against the dose
and the items, the ASP payment limit, the MUE.

A drug line is a line whose HCPCS code is a drug in the files in effect on its date of service
(scrubber.refdata). Drugs with a hand-written profile in rules/drugs.toml keep their own NDC, unit
and vial checks (N003, U003-U007), which know what CMS's files do not (single-dose containers,
verified vial sizes); these checks leave them alone, except the ASP and MUE ones, which only CMS
knows. A crosswalk row CMS published inconsistently never drives a finding here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..model.claim import Claim, ServiceLine
from . import cms_data
from .findings import Findings
from .lines import day, is_hcpcs, plain, round_down, round_up, units_of
from .ruleset import RuleSet

RULES = ("N006", "N007", "N008", "U016", "U017", "U018", "U019", "U020", "U021", "U022", "U023", "U024")

# CTP05-01 units and what a quantity in them measures, in the units CMS's dosages use.
_CTP_MEASURE = {"ME": ("mass", Decimal(1)), "GR": ("mass", Decimal(1000)), "ML": ("mL", Decimal(1)),
                "F2": ("units", Decimal(1))}
_MASS_MG = {"mg": Decimal(1), "mcg": Decimal("0.001"), "g": Decimal(1000)}
_MAX_STEPS = 200_000  # the vial arithmetic gives up (says nothing) beyond this many unit steps


class _Line:
    """A service line billing a CMS drug, with what the checks read off it."""

    __slots__ = ("code", "date", "line", "ndc", "profiled", "ref", "units")

    def __init__(self, line: ServiceLine, code: str, date: dt.date, ref: object, profiled: bool) -> None:
        self.line = line
        self.ref = ref  # DrugReference
        self.date = date
        self.profiled = profiled
        self.code = code
        self.units = units_of(line)
        ndc = line.ndc
        self.ndc = ndc.value if ndc is not None and len(ndc.value) == 11 and ndc.value.isdigit() else None

    @property
    def is_discard(self) -> bool:
        return "JW" in self.line.modifier_codes

    @property
    def single_dose(self) -> bool:
        # CMS's files do not say which drugs come in single-dose containers; JW and JZ exist only
        # for them, so a line that carries one says the drug does.
        return bool({"JW", "JZ"} & set(self.line.modifier_codes))


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    drug_lines = []
    unclassified = rules.hcpcs.unclassified
    by_code = rules.drugs.by_code
    cms_drug = cms_data.cms_drugs()
    for line in claim.lines:
        if not is_hcpcs(line):
            continue
        code = line.code.value  # type: ignore[union-attr]
        if code in unclassified:
            continue
        date = claim.line_date(line)
        ref = cms_drug(code, date)
        if ref is not None:  # (a drug on a date: cms_drug says None without one)
            drug_lines.append(_Line(line, code, date, ref, by_code(code) is not None))  # type: ignore[arg-type]
    if not drug_lines:
        return
    settings = cms_data.settings(rules.layers)
    unprofiled = []
    for item in drug_lines:
        if not item.profiled:
            unprofiled.append(item)
            _ndc(item, rules, out)
            _dose(item, claim, settings, out)
        _asp(item, settings, out)
    _items(drug_lines, rules, out)
    if unprofiled:
        _vials(unprofiled, out)
    _mue(drug_lines, claim, settings, out)


# -- the NDC against the crosswalk ----------------------------------------------------------------


def _ndc(item: _Line, rules: RuleSet, out: Findings) -> None:
    if item.ndc is None or rules.drugs.by_ndc(item.ndc) is not None:
        return  # no usable NDC (N001/N002 say so), or a profiled drug's NDC (N003 checks it)
    rows = cms_data.crosswalk_rows(item.ndc, item.date)
    if any(r.hcpcs == item.code for r in rows):
        return
    quarter = cms_data.crosswalk_quarter(item.date)
    data = cms_data.per_source(quarter, "ASP crosswalk", item.date)
    others = [r for r in rows if r.consistent]
    if others:
        codes = " or ".join(dict.fromkeys(r.hcpcs for r in others))
        first = others[0]
        out.add("N006", item.line.ndc, item.line, ndc=item.ndc, drug=first.drug_name, labeler=first.labeler,
                codes=codes, code=item.code, descriptor=item.ref.descriptor or item.ref.dosage or "", data=data)
    elif not rows and item.ref.items:
        rule = "N008" if quarter is not None and quarter.outside else "N007"
        out.add(rule, item.line.ndc, item.line, ndc=item.ndc, code=item.code, data=data,
                quarter=quarter.quarter if quarter else "", date=day(item.date))


# -- units against the dose (CTP04 in a measure) ----------------------------------------------------


def _dose_in_billing_units(item: _Line) -> Decimal | None:
    """The dose CTP04 states, counted in the measure of the code's billing unit (mg for "10 MG")."""
    line, unit = item.line, item.ref.billing_unit
    if unit is None or unit.up_to or line.ndc_quantity is None or line.ndc_unit is None:
        return None
    quantity = line.ndc_quantity.decimal()
    measure = _CTP_MEASURE.get(line.ndc_unit.value)
    if quantity is None or quantity <= 0 or measure is None:
        return None
    kind, factor = measure
    if kind == "mass":
        if unit.unit not in _MASS_MG:
            return None
        return quantity * factor / _MASS_MG[unit.unit]
    return quantity if unit.unit == kind else None


def _dose(item: _Line, claim: Claim, settings: cms_data.DrugDataSettings, out: Findings) -> None:
    units, dose = item.units, _dose_in_billing_units(item)
    if units is None or dose is None or units <= 0 or units != units.to_integral_value():
        return
    unit = item.ref.billing_unit
    per_unit = dose / unit.amount
    expected = round_down(per_unit) if item.is_discard else round_up(per_unit)
    if expected <= 0 or units == expected:
        return
    data = cms_data.per_source(_dosage_quarter(item.ref), item.ref.dosage_source or "files", item.date)
    values = {"units": plain(units), "code": item.code, "dose": f"{plain(dose)} {unit.unit}", "unit": str(unit),
              "expected": plain(expected), "data": data}
    if units == dose and unit.amount != 1:
        bound = _impossible_above(item, claim, settings)
        safe = bound is not None and units > bound >= expected
        why = f"; {plain(units)} units would be above the MUE of {bound}, so only {plain(expected)} is possible" \
            if safe else ""
        # The catalog holds one fix class per rule: the certain case (the units as billing units
        # would exceed the MUE) is U024, safe; the rest U016, unsafe.
        out.add("U024" if safe else "U016", item.line.units, item.line, why=why,
                fix=out.set_value(item.line.units, plain(expected)), **values)
    else:
        rounding = "down" if item.is_discard else "up"
        detail = f"the dose of {plain(dose)} {unit.unit} on CTP04 ({plain(dose)} / {unit} rounded {rounding} " \
                 f"= {plain(expected)})"
        out.add("U017", item.line.units, item.line, detail=detail, data=data, units=plain(units), code=item.code,
                todo=f"bill {plain(expected)} units or correct CTP04",
                fix=out.set_value(item.line.units, plain(expected)))


def _dosage_quarter(ref: object) -> object:
    return cms_data.quarter_of(ref, cms_data.DOSAGE_KIND.get(ref.dosage_source or "", ""))  # type: ignore[arg-type]


def _impossible_above(item: _Line, claim: Claim, settings: cms_data.DrugDataSettings) -> int | None:
    """The units above which a count is impossible: an MUE of clinical data (MAI 3), this setting's
    table first. None when no such MUE is at hand, and the fix stays unsafe."""
    setting = settings.mue_settings.get(claim.transaction.kind)
    limits = [item.ref.mue.get(setting)] if setting else []
    limits += list(item.ref.mue.values())
    for limit in limits:
        if limit is not None and limit.mai in settings.impossible_above_mue_mai:
            return limit.units
    return None


# -- CTP04 in items (UN) against the billing units ---------------------------------------------------


def _items(drug_lines: list[_Line], rules: RuleSet, out: Findings) -> None:
    groups: dict[tuple[str, dt.date, str], list[_Line]] = {}
    for item in drug_lines:
        unit = item.line.ndc_unit
        if item.ndc is not None and unit is not None and unit.value == "UN" and item.units is not None:
            groups.setdefault((item.code, item.date, item.ndc), []).append(item)
    for (code, when, ndc), items in groups.items():
        row = next((r for r in cms_data.crosswalk_rows(ndc, when) if r.hcpcs == code), None)
        if row is None or not row.consistent or row.billing_units_per_item is None:
            continue
        per_item = _profile_units_per_item(rules, code, ndc) or row.billing_units_per_item
        counts = [i.line.ndc_quantity.decimal() for i in items if i.line.ndc_quantity is not None]
        counts = [c for c in counts if c is not None and c > 0]
        if not counts:
            continue
        stated = max(counts)  # a JW line repeats the items opened, or states fewer
        capacity = stated * per_item
        billed = sum((i.units for i in items), Decimal(0))
        if billed <= round_up(capacity):
            continue
        last = items[-1]
        data = cms_data.per_source(cms_data.crosswalk_quarter(when), "ASP crosswalk", when)
        detail = (f"CTP04's {plain(stated)} items of NDC {ndc} ({row.drug_name}, {plain(per_item)} "
                  f"units of {code} each: {plain(capacity)} units)")
        out.add("U017", last.line.ndc_quantity, last.line, units=plain(billed), code=code, detail=detail, data=data,
                todo="correct the units, or CTP04 to the items opened")


def _profile_units_per_item(rules: RuleSet, code: str, ndc: str) -> Decimal | None:
    """A profile's verified vial size in billing units: it overrides the crosswalk's BILLUNITS."""
    by_code, by_ndc = rules.drugs.by_code(code), rules.drugs.by_ndc(ndc)
    if by_code is None or by_ndc is None or by_ndc[0] is not by_code[0]:
        return None
    product = by_ndc[1]
    if product.vial_mg is None or not product.vial_verified:
        return None
    return product.vial_mg / by_code[1].billing_unit_mg


# -- vials of single-dose drugs -------------------------------------------------------------------------


def _sizes(items: list[_Line]) -> tuple[Decimal, ...]:
    """The billing units one item holds: the sizes of the lines' NDCs when every line names one in
    the crosswalk, else every size the drug comes in. () when a row is inconsistent (never judged)."""
    sizes = set()
    for item in items:
        row = next((r for r in cms_data.crosswalk_rows(item.ndc, item.date) if r.hcpcs == item.code), None) \
            if item.ndc is not None else None
        if row is None:
            return tuple(s for s in items[0].ref.item_sizes if s > 0)
        if not row.consistent or row.billing_units_per_item is None or row.billing_units_per_item <= 0:
            return ()
        sizes.add(row.billing_units_per_item)
    return tuple(sorted(sizes))


def _vials(drug_lines: list[_Line], out: Findings) -> None:
    groups: dict[tuple[str, dt.date], list[_Line]] = {}
    for item in drug_lines:
        if item.units is not None and item.units > 0:
            groups.setdefault((item.code, item.date), []).append(item)
    for (code, when), items in groups.items():
        if not any(i.single_dose for i in items):
            continue
        sizes = _sizes(items)
        if not sizes:
            continue
        data = cms_data.per_source(cms_data.crosswalk_quarter(when), "ASP crosswalk", when)
        shown = " or ".join(plain(s) for s in sizes)
        whole = [i for i in items if i.is_discard and i.units >= max(sizes)]
        for item in whole:
            out.add("U018", item.line.units, item.line, units=plain(item.units), code=code, sizes=shown, data=data)
        if whole:
            continue
        given = sum((i.units for i in items if not i.is_discard), Decimal(0))
        discarded = sum((i.units for i in items if i.is_discard), Decimal(0))
        total = given + discarded
        if _close_to_whole_items(total, sizes):
            continue
        last = items[-1]
        out.add("U019", last.line.units, last.line, code=code, date=day(when), given=plain(given),
                discarded=plain(discarded), total=plain(total), sizes=shown, data=data)


def _close_to_whole_items(total: Decimal, sizes: tuple[Decimal, ...]) -> bool:
    """Whether some count of items of the sizes holds `total` units within one unit (administered
    units round up and discarded units round down, so the sum may miss by less than one)."""
    exponent = min(min(s.normalize().as_tuple().exponent for s in sizes), 0)
    scale = Decimal(10) ** -exponent
    steps = [int(s * scale) for s in sizes]
    target, tolerance = int(round_up(total * scale)), int(scale)
    limit = target + tolerance
    if limit > _MAX_STEPS:
        return True  # too large to tell cheaply: say nothing
    reachable = bytearray(limit + 1)
    reachable[0] = 1
    for amount in range(1, limit + 1):
        reachable[amount] = any(amount >= s and reachable[amount - s] for s in steps)
    exact = total * scale
    return any(reachable[a] and abs(a - exact) < tolerance for a in range(1, limit + 1))


# -- the ASP payment limit ---------------------------------------------------------------------------


def _asp(item: _Line, settings: cms_data.DrugDataSettings, out: Findings) -> None:
    limit, units, line = item.ref.payment_limit, item.units, item.line
    charge = line.charge.decimal() if line.charge is not None else None
    if limit is None or units is None or charge is None or units <= 0 or limit <= 0:
        return
    paid = units * limit
    # The quarter is looked for only when the charge is out of line (most are not).
    if charge > paid * settings.asp_over_ratio:
        out.add("U021", line.charge, line, ratio=plain(settings.asp_over_ratio),
                times=plain((charge / paid).quantize(Decimal("0.1"))),
                **_asp_values(item, charge, paid, cms_data.quarter_of(item.ref, "asp_pricing")))
    elif charge < paid * settings.asp_under_ratio:
        quarter = cms_data.quarter_of(item.ref, "asp_pricing")
        if quarter is not None and not quarter.outside:
            # A payment limit of another quarter proves nothing about a charge: prices move quarterly.
            out.add("U020", line.charge, line, **_asp_values(item, charge, paid, quarter))


def _asp_values(item: _Line, charge: Decimal, paid: Decimal, quarter: object) -> dict[str, str]:
    """The numbers of an ASP finding's message (a function of its own, not a closure made for every
    line: most lines have no finding)."""
    return {"charge": plain(charge), "units": plain(item.units), "code": item.code,  # type: ignore[arg-type]
            "limit": plain(item.ref.payment_limit), "paid": plain(paid.quantize(Decimal("0.01"))),
            "data": cms_data.per_source(quarter, "ASP pricing", item.date)}  # type: ignore[arg-type]


# -- the MUE -----------------------------------------------------------------------------------------


def _mue(drug_lines: list[_Line], claim: Claim, settings: cms_data.DrugDataSettings, out: Findings) -> None:
    setting = settings.mue_settings.get(claim.transaction.kind)
    if setting is None:
        return
    groups: dict[tuple[str, dt.date], list[_Line]] = {}
    for item in drug_lines:
        if item.units is not None and item.units > 0 and setting in item.ref.mue:
            groups.setdefault((item.code, item.date), []).append(item)
    for (code, when), items in groups.items():
        limit = items[0].ref.mue[setting]
        total = sum((i.units for i in items), Decimal(0))
        if total <= limit.units:
            continue
        over_line = [i for i in items if i.units > limit.units]
        data = cms_data.per_source(limit.quarter, "MUE table", when)
        values = {"code": code, "mue": limit.units, "mai": limit.mai,
                  "setting": setting.replace("_", " "), "data": data}
        if limit.mai in settings.mue_per_date:
            last = items[-1]
            out.add("U022", last.line.units, last.line, units=plain(total), per=f"on {day(when)}", **values)
        elif limit.mai in settings.mue_per_line and over_line:
            for item in over_line:
                out.add("U022", item.line.units, item.line, units=plain(item.units),
                        per=f"on one line on {day(when)}", **values)
        else:
            last = items[-1]
            out.add("U023", last.line.units, last.line, units=plain(total), date=day(when), **values)
