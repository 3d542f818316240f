"""Throughput and pick-up delay of the drop-folder watcher on a local root.

    python bench/watch.py [--small 200] [--large 4] [--large-claims 5000]

- throughput: N small files (the 2-claim sample, made distinct) and a few large ones (synthetic,
  bench/generate.py) through `scrubber watch ROOT --once`, files and claims per second, with the
  default outputs;
- delay: with a running watcher (settle 1 s, poll 0.5 s, and the defaults 5 s / 2 s), the time
  from a file's upload completing (its rename into the inbox) to its results being in the outbox.
Each figure is one run on this machine; compare them with `python bench/run.py` of the same run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "edi_samples" / "clean_837i.837").read_bytes()


def distinct(data: bytes, n: int) -> bytes:
    control = data[90:99]
    return data.replace(control, b"%09d" % (5000 + n)).replace(b"CLM*", b"CLM*B%05d" % n)


def through(root: Path, files: dict[str, bytes]) -> float:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scrubber", "watch", str(root), "--once", "--settle", "0"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or any((root / "inbox").iterdir()):
        raise SystemExit(f"the watcher did not take every file:\n{done.stderr[-2000:]}")
    return seconds


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
    args = parser.parse_args()
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
