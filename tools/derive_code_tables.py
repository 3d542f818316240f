"""Derive the code tables in rules/code_tables/ from CMS's own files.

    python tools/derive_code_tables.py [CMS_DIR]

CMS_DIR defaults to ../shared/reference/cms. The output keeps only the columns the scrubber
reads; nothing is changed in the values. tests/test_code_tables.py checks that the committed
tables are what this script makes, whenever the CMS files are at hand.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rules" / "code_tables"

HCPCS_SOURCE = "HCPC2025_OCT_ANWEB.csv"
HCPCS_TABLE = "hcpcs_2025_oct.csv"
CROSSWALK_SOURCE = "Oct2025_ASP_NDC-HCPCS_crosswalk.csv"
CROSSWALK_TABLE = "asp_ndc_hcpcs_2025_oct.csv"

_NDC_542 = re.compile(r"^\d{5}-\d{4}-\d{2}$")


def _date(value: str) -> str:
    value = value.strip()
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if value else ""


def hcpcs_rows(source: Path) -> list[list[str]]:
    """One row per code: code, added, terminated, first cross-reference (XREF1), short descriptor."""
    rows = [["code", "added", "terminated", "cross_reference", "short_description"]]
    with source.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            # RECID 3 is a procedure code's first line; 4 continues its descriptor and 7 is
            # a modifier (modifiers are checked from rules/modifiers.toml, not here).
            if record["RECID"] != "3":
                continue
            rows.append(
                [
                    record["HCPC"].strip(),
                    _date(record["ADD DT"]),
                    _date(record["TERM DT"]),
                    record["XREF1"].strip(),
                    record["SHORT DESCRIPTION"].strip(),
                ]
            )
    return rows


def crosswalk_rows(source: Path) -> list[list[str]]:
    """One row per NDC package: NDC (5-4-2), HCPCS code, drug name, billing units a package."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("_2025_CODE,"))
    rows = [["ndc", "hcpcs", "drug_name", "billing_units_per_package"]]
    for record in csv.DictReader(lines[header:]):
        ndc = record["NDC2"].strip()
        # A few rows carry product names or partial codes in the NDC column: not NDCs.
        if not _NDC_542.match(ndc):
            continue
        rows.append(
            [ndc, record["_2025_CODE"].strip(), record["Drug Name"].strip(), record["BILLUNITSPKG"].strip()]
        )
    return rows


def render(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def main(argv: list[str]) -> int:
    cms = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "reference" / "cms"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / HCPCS_TABLE).write_text(render(hcpcs_rows(cms / HCPCS_SOURCE)), encoding="utf-8")
    (OUT / CROSSWALK_TABLE).write_text(render(crosswalk_rows(cms / CROSSWALK_SOURCE)), encoding="utf-8")
    print(f"wrote {OUT / HCPCS_TABLE} and {OUT / CROSSWALK_TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
