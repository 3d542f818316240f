"""Pathological shapes of one 837P, to measure time and memory against their size (issue 8, "Size").

    python bench/pathological.py [--shape lines|segments|unknown|depth|all] [--sizes 2000,4000,8000] [--jobs N]

Shapes (each a valid envelope around one transaction set, made from the clean sample's claim):
- lines:    one claim with N service lines (J9032, one unit, the same date);
- segments: one claim with N tiny segments (`NTE*ADD*X`, about 10 bytes each) in its claim loop;
- unknown:  one claim with N segments of an unknown id (`ZZZ`, 4 bytes each) in its service line,
            two implementation-guide errors each (the flood fuzzing found);
- depth:    N nested HL levels (each a subscriber loop under the one before), a claim at the bottom.

Each size is scrubbed by `scrubber scrub` (default outputs; `--jobs` as given, else the CLI's
default) in a fresh process; the table gives CPU seconds (user + system, start-up included, its
worker processes' too), peak memory (max RSS of the scrub's process, and of its largest worker when
it ran some), against the first size, the ratio of time to the ratio of size (1.0 is linear,
2.0 at a doubling is quadratic), and how the scrub ended: "scrubbed" (exit 0 or 1), or "refused"
with its exit code. Past structural.SET_ERROR_LIMIT errors in its set (200,000: `segments` past
about 200,000, `unknown` past 100,000) the claim is rejected with the first errors only kept (README,
"A transaction set with more than 200,000 errors"): those sizes measure that, not a full listing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD = [
    "ISA*00*          *00*          *ZZ*SUBMIT001      *ZZ*RECV001        *261120*1200*^*00501*000000101*0*T*:",
    "GS*HC*SUBMIT001*RECV001*20261120*1200*101*X*005010X222A1",
    "ST*837*0101*005010X222A1",
    "BHT*0019*00*BATCH0101*20261120*1200*CH",
    "NM1*41*2*EXAMPLE ONCOLOGY BILLING*****46*SUBMIT001",
    "PER*IC*BILLING DESK*TE*5555550100",
    "NM1*40*2*EXAMPLE CLEARINGHOUSE*****46*RECV001",
    "HL*1**20*1",
    "NM1*85*2*EXAMPLE ONCOLOGY ASSOCIATES*****XX*1234567893",
    "N3*100 MAIN STREET",
    "N4*SPRINGFIELD*IL*627010001",
    "REF*EI*123456789",
]
SUBSCRIBER = [
    "SBR*P*18*GRP0001******MB",
    "NM1*IL*1*DOE*JANE****MI*MBR000001",
    "N3*1 ELM STREET",
    "N4*SPRINGFIELD*IL*62701",
    "DMG*D8*19550101*F",
    "NM1*PR*2*MEDICARE PART B*****PI*00952",
]


def _line(number: int) -> list[str]:
    return [f"LX*{number}", "SV1*HC:J9032:JZ*52.47*UN*1***1", "DTP*472*D8*20261102"]


def build(shape: str, size: int) -> str:
    segments = list(HEAD)
    lines = size if shape == "lines" else 1
    if shape == "depth":
        for level in range(size):
            segments += [f"HL*{level + 2}*{level + 1}*22*{1 if level < size - 1 else 0}", *SUBSCRIBER]
    else:
        segments += ["HL*2*1*22*0", *SUBSCRIBER]
    segments += [f"CLM*PATHO-1*{52.47 * lines:.2f}***11:B:1*Y*A*Y*Y", "HI*ABK:C8440"]
    if shape == "segments":
        segments += ["NTE*ADD*X"] * size
    for number in range(1, lines + 1):
        segments += _line(number)
    if shape == "unknown":
        segments[-1:-1] = ["ZZZ"] * size  # (before the line's DTP)
    count = len(segments) - 2 + 1
    segments += [f"SE*{count}*0101", "GE*1*101", "IEA*1*000000101"]
    return "~\n".join(segments) + "~\n"


def measure(path: Path, out: Path, timeout: float, jobs: int | None) -> tuple[float, float, float, int] | None:
    """CPU seconds (the scrub's process and its workers) and peak memory (MiB: the process, its
    largest worker) of one `scrubber scrub` in a fresh process. CPU time, not wall time: on a shared
    machine the wall clock mostly measures the neighbours."""
    script = (
        "import resource, sys, time\n"
        "from scrubber.cli import main\n"
        "start = time.perf_counter()\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "workers = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(usage.ru_utime + usage.ru_stime + workers.ru_utime + workers.ru_stime, usage.ru_maxrss,\n"
        "      workers.ru_maxrss, file=sys.stderr)\n"
    )
    command = [sys.executable, "-c", script, "scrub", str(path), "--out", str(out), "-q"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    seconds, peak_kib, worker_kib = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(peak_kib) / 1024, int(worker_kib) / 1024, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("lines", "segments", "unknown", "depth", "all"), default="all")
    parser.add_argument("--jobs", type=int, help="the scrub's --jobs (default: the CLI's)")
    parser.add_argument("--sizes", default="2000,4000,8000,16000")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one scrub may take")
    args = parser.parse_args(argv)
    shapes = ("lines", "segments", "unknown", "depth") if args.shape == "all" else (args.shape,)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| shape | size | CPU seconds | peak MiB | time ratio / size ratio | ended |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        for shape in shapes:
            first: tuple[int, float] | None = None
            for size in sizes:
                path = Path(folder) / f"{shape}-{size}.837"
                path.write_text(build(shape, size), encoding="ascii")
                measured = measure(path, Path(folder) / "out", args.timeout, args.jobs)
                if measured is None:
                    print(f"| {shape} | {size:,} | > {args.timeout:.0f} (stopped) | | | |", flush=True)
                    break
                seconds, peak, worker_peak, code = measured
                first = first or (size, seconds)
                ratio = (seconds / first[1]) / (size / first[0]) if first[1] else float("nan")
                shown = f"{peak:.0f}" + (f" (worker {worker_peak:.0f})" if worker_peak > 1 else "")
                ended = "scrubbed" if code in (0, 1) else f"refused (exit {code})"
                print(f"| {shape} | {size:,} | {seconds:.2f} | {shown} | {ratio:.2f} | {ended} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
