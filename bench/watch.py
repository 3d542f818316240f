"""Throughput and pick-up delay of the drop-folder watcher on a local root.

    python bench/watch.py [--small 200] [--large 4] [--large-claims 5000]
    python bench/watch.py --jobs-batch [--files 20] [--claims 500] [--rounds 3]

- throughput: N small files (the 2-claim sample, made distinct) and a few large ones (synthetic,
  bench/generate.py) through `scrubber watch ROOT --once`, files and claims per second, with the
  default outputs;
- delay: with a running watcher (settle 1 s, poll 0.5 s, and the defaults 5 s / 2 s), the time
  from a file's upload completing (its rename into the inbox) to its results being in the outbox.
Each figure is one run on this machine; compare them with `python bench/run.py` of the same run.

`--jobs-batch`: a batch of small files (bench/batch.py's, each with its own patients) through
`scrubber watch ROOT --once --jobs 1`, then `--jobs 2` (small files scrubbed whole in the workers,
ahead: scrubber/watch/ahead.py), then the machine's ceiling for two processes (bench/run.py: two
CPU loops at once against one), each round; the medians of wall-clock and CPU seconds, and the ratio.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SAMPLE = (ROOT / "edi_samples" / "clean_837i.837").read_bytes()


def distinct(data: bytes, n: int) -> bytes:
    control = data[90:99]
    return data.replace(control, b"%09d" % (5000 + n)).replace(b"CLM*", b"CLM*B%05d" % n)


def through(root: Path, files: dict[str, bytes], *more: str) -> float:
    return timed(root, files, *more)[0]


def timed(root: Path, files: dict[str, bytes], *more: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds (the watcher and its workers) of `scrubber watch ROOT --once` over `files`."""
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once", "--settle", "0", *more],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or any((root / "inbox").iterdir()):
        raise SystemExit(f"the watcher did not take every file:\n{done.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def jobs_batch(files: int, claims: int, rounds: int) -> int:
    """A batch of small files with --jobs 1 and --jobs 2, and the machine's ceiling, each round."""
    import batch
    import run

    inputs = {path.name: path.read_bytes() for path in batch.batch(files, claims)}
    rows: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    ceilings = []
    work = Path(tempfile.mkdtemp(prefix="scrubber-watch-bench-"))
    try:
        for number in range(1, rounds + 1):
            for jobs in (1, 2):
                rows[jobs].append(timed(work / f"r{number}j{jobs}", inputs, "--jobs", str(jobs)))
                shutil.rmtree(work / f"r{number}j{jobs}")
            ceilings.append(run.parallel_ceiling())
            print(f"round {number}: jobs1 {rows[1][-1][0]:.2f} s, jobs2 {rows[2][-1][0]:.2f} s, "
                  f"ceiling {ceilings[-1]:.2f}x", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, two = (statistics.median(w for w, _ in rows[jobs]) for jobs in (1, 2))
    print(f"# `scrubber watch --once`: {files} files of {claims} claims, default outputs, median of {rounds} "
          "rounds\n")
    print("| jobs | seconds | CPU seconds (with workers) | files/s |\n|---|---:|---:|---:|")
    for jobs, values in rows.items():
        wall = statistics.median(w for w, _ in values)
        print(f"| {jobs} | {wall:.2f} | {statistics.median(c for _, c in values):.2f} | {files / wall:.1f} |")
    print(f"\n--jobs 2 speed-up: {one / two:.2f}x (rounds: "
          f"{', '.join(f'{a[0] / b[0]:.2f}x' for a, b in zip(rows[1], rows[2], strict=True))}); the machine's "
          f"ceiling for two processes: {statistics.median(ceilings):.2f}x (rounds: "
          f"{', '.join(f'{c:.2f}x' for c in ceilings)})")
    return 0


def delay(root: Path, settle: float, poll: float, rounds: int = 3) -> float:
    (root / "inbox").mkdir(parents=True)
    watcher = subprocess.Popen([sys.executable, "-m", "scrubber", "watch", str(root), "--settle", str(settle),
                                "--poll", str(poll)], stderr=subprocess.DEVNULL)
    waits = []
    try:
        time.sleep(2.0)
        for n in range(rounds):
            part = root / "inbox" / f"up{n}.837.part"
            part.write_bytes(distinct(SAMPLE, 90000 + n))
            part.rename(root / "inbox" / f"up{n}.837")  # the upload completes here
            started = time.perf_counter()
            while not any(p.name.startswith(f"up{n}.837.") for p in (root / "outbox").glob("*")):
                time.sleep(0.02)
            waits.append(time.perf_counter() - started)
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)
    return sorted(waits)[len(waits) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-claims", type=int, default=5000)
    parser.add_argument("--jobs-batch", action="store_true",
                        help="measure a batch of small files with --jobs 1 against --jobs 2 instead")
    parser.add_argument("--files", type=int, default=20, help="--jobs-batch: files in the batch")
    parser.add_argument("--claims", type=int, default=500, help="--jobs-batch: claims a file")
    parser.add_argument("--rounds", type=int, default=3, help="--jobs-batch: rounds (medians are given)")
    args = parser.parse_args()
    if args.jobs_batch:
        return jobs_batch(args.files, args.claims, args.rounds)
    work = Path(tempfile.mkdtemp(prefix="scrubber-watch-bench-"))
    try:
        small = {f"small-{n:04d}.837": distinct(SAMPLE, n) for n in range(args.small)}
        small_seconds = through(work / "small", small)
        big_file = work / "big.837"
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), str(args.large_claims), str(big_file)],
                       check=True, capture_output=True)
        big = big_file.read_bytes()
        large = {f"large-{n}.837": big.replace(b"CLM*C", b"CLM*L%d" % n) for n in range(args.large)}
        large_seconds = through(work / "large", large)
        quick = delay(work / "quick", 1.0, 0.5)
        default = delay(work / "default", 5.0, 2.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    small_claims = sum(d.count(b"CLM*") for d in small.values())
    large_claims = sum(d.count(b"CLM*") for d in large.values())
    print("# Watcher throughput and delay (`python bench/watch.py`; one run; local root; default outputs)\n")
    print("| files | claims | seconds | files/s | claims/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {args.small} small (2 claims each) | {small_claims} | {small_seconds:.1f} | "
          f"{args.small / small_seconds:.1f} | {small_claims / small_seconds:.0f} |")
    print(f"| {args.large} large ({args.large_claims} claims each) | {large_claims} | {large_seconds:.1f} | "
          f"{args.large / large_seconds:.2f} | {large_claims / large_seconds:.0f} |")
    print("\n| settle / poll | median delay from upload complete to results in the outbox |")
    print("|---|---:|")
    print(f"| 1 s / 0.5 s | {quick:.2f} s |")
    print(f"| 5 s / 2 s (defaults) | {default:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
