"""Benchmark a run of many small files: `scrubber scrub` with --jobs 1 against --jobs 2 (small
inputs go whole to the workers: output/by_files.py), with the machine's ceiling for two processes
measured in the same run.

    python bench/batch.py                          # 20 files of 500 claims, 3 rounds
    python bench/batch.py --files 40 --claims 250 --rounds 5

The files are generated into bench/results/batch_<files>x<claims>/ (bench/generate.py --first, so
each file has its own patients). Each round runs --jobs 1, then --jobs 2, then the ceiling; the
table gives the medians: wall-clock seconds, CPU seconds of the run and its workers, and the ratio.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import run  # noqa: E402


def batch(files: int, claims: int) -> list[Path]:
    folder = run.RESULTS / f"batch_{files}x{claims}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(files):
        path = folder / f"batch{k:03d}.837"
        if not path.exists():
            generate.generate(claims, path, per_transaction=claims, first=k * claims)
        paths.append(path)
    return paths


def scrub(paths: list[Path], jobs: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (the run and its workers) of one `scrubber scrub` of `paths`."""
    command = [sys.executable, "-m", "scrubber", "scrub", *map(str, paths), "--jobs", str(jobs), "-q",
               "--outputs", "corrected,json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="scrubber-batch-") as out:
        t0 = time.perf_counter()
        done = subprocess.run([*command, "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed (exit {done.returncode}): {done.stderr.decode()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--claims", type=int, default=500, help="claims a file")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    paths = batch(args.files, args.claims)
    rows: dict[str, list[tuple[float, float]]] = {"jobs1": [], "jobs2": []}
    ceilings = []
    for number in range(1, args.rounds + 1):
        rows["jobs1"].append(scrub(paths, 1))
        rows["jobs2"].append(scrub(paths, 2))
        ceilings.append(run.parallel_ceiling())
        print(f"round {number}: jobs1 {rows['jobs1'][-1][0]:.2f} s, jobs2 {rows['jobs2'][-1][0]:.2f} s, "
              f"ceiling {ceilings[-1]:.2f}x", file=sys.stderr)
    one = statistics.median(w for w, _ in rows["jobs1"])
    two = statistics.median(w for w, _ in rows["jobs2"])
    print(f"# {args.files} files of {args.claims} claims, median of {args.rounds} rounds\n")
    print("| mode | seconds | CPU seconds (with workers) |\n|---|---:|---:|")
    for mode, values in rows.items():
        print(f"| {mode} | {statistics.median(w for w, _ in values):.2f} | "
              f"{statistics.median(c for _, c in values):.2f} |")
    print(f"\n--jobs 2 speed-up: {one / two:.2f}x; the machine's ceiling for two processes: "
          f"{statistics.median(ceilings):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
