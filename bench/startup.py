"""How long a scrub of a one-claim file takes to start and finish, and what loading costs.

    python bench/startup.py [--runs 7]

Each measurement is a fresh process; the figure is the median of the runs. The floor is the
interpreter starting and doing nothing (`python -c pass`), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_CLAIM = ROOT / "edi_samples" / "clean_837i.837"

LOAD_RULES = "from scrubber import load_rules; load_rules()"
LOAD_TABLES = ("from scrubber import load_rules; r = load_rules(); r.hcpcs; r.ndc_crosswalk; r.icd10; "
               "from scrubber.x12.ig import _load_map; _load_map('x12.control.00501.xml'); "
               "_load_map('837.5010.X222.A1.xml'); _load_map('837Q3.I.5010.X223.A1.xml')")

FIRST_LOOKUP = ("import datetime, scrubber; from scrubber.refdata import ReferenceData; "
                "ReferenceData.open().drug('J9312', datetime.date(2025, 11, 3))")


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        modes = {
            "interpreter alone (floor)": [sys.executable, "-c", "pass"],
            "import scrubber": [sys.executable, "-c", "import scrubber"],
            "+ load and check the rule data": [sys.executable, "-c", LOAD_RULES],
            "+ load every code table and IG map": [sys.executable, "-c", LOAD_TABLES],
            "import scrubber + first CMS reference data lookup": [sys.executable, "-c", FIRST_LOOKUP],
            "scrubber scrub, 2-claim 837I file": [sys.executable, "-m", "scrubber", "scrub", str(ONE_CLAIM),
                                                   "--out", out],
        }
        times: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.runs):  # interleaved, so noise hits every mode alike
            for name, command in modes.items():
                times[name].append(timed(command))
    floor = statistics.median(times["interpreter alone (floor)"])
    print(f"# Start-up (median of {args.runs} runs each, fresh processes; `python bench/startup.py`)\n")
    print("| what | seconds | x floor |")
    print("|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {median / floor:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
