"""The figures issue 10 quotes, measured on the shipped store's October 2025 files.

    python tools/refdata_figures.py [--quarter 2025-10-01]

Active J-codes come from the HCPCS file (RECID 3, no termination before the quarter); the rest from
the ASP NDC-HCPCS crosswalk's J-code rows. tests/test_refdata.py holds these figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrubber.refdata import ReferenceData, ndc11, parse_dosage
from scrubber.refdata.sources import INCONSISTENT
from scrubber.refdata.store import read_table


def figures(reference: ReferenceData, day: dt.date) -> dict[str, int]:
    sources = {i.kind: i for i in reference.sources if i.effective_from <= day <= i.effective_to and not i.setting}
    hcpcs = read_table(sources["hcpcs"])
    active = {r["code"] for r in hcpcs if r["code"].startswith("J") and not (r["terminated"] and
                                                                            r["terminated"] < day.isoformat())}
    rows = [r for r in read_table(sources["asp_crosswalk"]) if r["hcpcs"].startswith("J")]
    by_code: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_code[row["hcpcs"]].append(row)
    with_ndc = {c for c, rs in by_code.items() if any(ndc11(r["ndc"]) for r in rs)}

    def per_mg(code: str) -> bool:
        units = {parse_dosage(r["dosage"]) for r in by_code[code]}
        return all(u is not None and u.unit == "mg" and not u.up_to for u in units)

    def flagged(flag: str) -> int:
        return sum(1 for r in rows if flag in r["flags"].split(";"))

    return {
        "active J-codes (HCPCS file)": len(active),
        "J-codes in the crosswalk": len(by_code),
        "J-codes in the crosswalk with an NDC": len(with_ndc),
        "active J-codes in the crosswalk with an NDC": len(with_ndc & active),
        "J-code rows (NDC rows)": len(rows),
        "labelers (names as printed)": len({r["labeler"] for r in rows}),
        "J-codes billed per N mg": sum(1 for c in by_code if per_mg(c)),
        "J-codes with more than one item size (BILLUNITS)": sum(1 for rs in by_code.values()
                                                                if len({r["billunits"] for r in rs}) > 1),
        "J-code rows inconsistent: arithmetic": flagged("arithmetic"),
        "J-code rows inconsistent: implausible": flagged("implausible"),
        "J-code rows inconsistent: unreadable": flagged("unreadable"),
        "J-code rows inconsistent (any)": sum(1 for r in rows if set(r["flags"].split(";")) & set(INCONSISTENT)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarter", type=dt.date.fromisoformat, default=dt.date(2025, 10, 1))
    args = parser.parse_args()
    for name, value in figures(ReferenceData.open(use_env=False), args.quarter).items():
        print(f"{value:>6,}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
