"""How many of CMS's drug codes each check of scrubber/rules/cms_drugs.py can judge, on one date.

    python tools/drug_check_coverage.py [YYYY-MM-DD]     # default 2025-11-15 (the October 2025 files)

A code is a drug when scrubber.refdata says so (in the quarter's ASP files, or OPPS status K or G).
Checks: NDC (N006/N007: the code has crosswalk rows), dose units (U016/U017 with CTP04 in ME, GR,
ML or F2: one billing unit of mg, mcg, g, mL or units, not "up to"), items (U017 with CTP05 UN) and
vials (U018/U019, on lines with JW or JZ): consistent crosswalk rows with BILLUNITS; ASP (U020/U021):
a payment limit; MUE (U022/U023): an outpatient-hospital MUE.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrubber.refdata import ReferenceData

CONVERTIBLE = {"mg", "mcg", "g", "mL", "units"}


def main(day: dt.date) -> None:
    data = ReferenceData.open(use_env=False)
    codes: set[str] = set()
    for kind in ("asp_pricing", "asp_crosswalk", "opps_addendum_b"):
        info = data._source_for(kind, day)
        if info is not None:
            codes |= set(data._table(info).codes())
    drugs = [d for d in (data.drug(c, day) for c in sorted(codes)) if d is not None and d.is_drug]
    checks: Counter[str] = Counter()
    unchecked: Counter[str] = Counter()
    for d in drugs:
        ndc = bool(d.items)
        unit = d.billing_unit is not None and not d.billing_unit.up_to and d.billing_unit.unit in CONVERTIBLE
        vial = bool(d.item_sizes)
        checks.update({"NDC (N006/N007)": ndc, "dose units (U016/U017)": unit, "items and vials (U017-U019)": vial,
                       "ASP (U020/U021)": d.payment_limit is not None,
                       "MUE outpatient hospital (U022/U023)": "outpatient_hospital" in d.mue,
                       "NDC, units and vials all": ndc and unit and vial})
        if not unit:
            if d.billing_unit is None:
                unchecked["units: dosage not one amount of one unit (e.g. '10 MG/3MG', or none)"] += 1
            elif d.billing_unit.up_to:
                unchecked["units: 'up to N' dosage (one unit covers any dose up to N)"] += 1
            else:
                unchecked[f"units: billed per {d.billing_unit.unit} (no CTP05 unit measures it)"] += 1
        if not vial:
            why = "vials: no consistent crosswalk row with BILLUNITS" if d.items else \
                "NDC and vials: not in the crosswalk"
            unchecked[why] += 1
    j_codes = sum(1 for d in drugs if d.code.startswith("J"))
    print(f"drug codes on {day}: {len(drugs)} ({j_codes} J-codes, {len(drugs) - j_codes} others)")
    for name, count in checks.items():
        print(f"  {name}: {count}")
    print("not checked, and why:")
    for why, count in unchecked.most_common():
        print(f"  {why}: {count}")


if __name__ == "__main__":
    main(dt.date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else dt.date(2025, 11, 15))
