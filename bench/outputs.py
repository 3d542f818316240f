"""What each output costs: time and size for a file of N claims, as a share of the scrub itself.

    python bench/outputs.py [--claims 10000] [--repeat 1]

The scrub itself is `scrub_stream` with no output at all (reading, validating, checking, fixing);
then, each in a fresh process, the scrub with one output. An output's cost is the difference, as
a share of the scrub alone measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("corrected", "rejected", "json", "html", "csv", "999", "277ca")

CHILD = r"""
import io, json, os, sys, tempfile, time
from pathlib import Path
import scrubber
from scrubber.output.files import OutputSet
path, kind = sys.argv[1], sys.argv[2]
rules = scrubber.load_rules()
rules.hcpcs; rules.ndc_crosswalk; rules.icd10  # loaded before timing: the same in every mode
out = Path(tempfile.mkdtemp())
files = OutputSet(out, "bench", ".837", (kind,) if kind != "none" else (), path, {})
started = time.perf_counter()
with open(path, "rb") as source:
    scrubber.scrub_stream(source, rules, list(files.sinks.values()))
written = files.commit()
seconds = time.perf_counter() - started
size = sum(p.stat().st_size for p in written.values())
print(json.dumps({"kind": kind, "seconds": seconds, "bytes": size}))
"""


def measure(path: Path, kind: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), kind], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "claims.837"
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), str(args.claims), str(path)],
                       check=True, capture_output=True)
        # Make one drug line in ten rejectable (units 0), so the rejected file and the reports have
        # something in them.
        data = path.read_bytes()
        lines = data.split(b"~\n")
        changed, seen = [], 0
        for line in lines:
            if line.startswith(b"SV1*HC:J9032") and b"*UN*" in line:
                seen += 1
                if seen % 10 == 0:
                    head, _, rest = line.partition(b"*UN*")
                    line = head + b"*UN*0" + rest[rest.index(b"*"):]
            changed.append(line)
        path.write_bytes(b"~\n".join(changed))
        rows: dict[str, list[dict]] = {k: [] for k in ("none", *KINDS)}
        for _ in range(args.repeat):
            for kind in rows:
                rows[kind].append(measure(path, kind))
        size_in = os.path.getsize(path)
    base = statistics.median(r["seconds"] for r in rows["none"])
    print(f"# Output costs for {args.claims:,} claims ({size_in / 1e6:.1f} MB in; `python bench/outputs.py`; "
          f"median of {args.repeat})\n")
    print(f"The scrub itself, no output: {base:.2f} s.\n")
    print("| output | extra seconds | share of the scrub | size |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        seconds = statistics.median(r["seconds"] for r in rows[kind])
        size = rows[kind][0]["bytes"]
        print(f"| {kind} | {seconds - base:+.2f} | {(seconds - base) / base:+.1%} | {size / 1e3:,.0f} kB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
