"""Long fuzzing runs over scrubber.scrub() and every renderer (issue 8); the short run is in the tests.

    python bench/fuzz.py --jobs 2 --inputs 1000000            X12-level mutations of the seeds, in processes
    python bench/fuzz.py --inputs 100000 --seconds 1200        stop at whichever comes first
    python bench/fuzz.py --atheris -runs=1000000               coverage-guided (atheris / libFuzzer)
    python bench/fuzz.py --atheris --keep-going -max_total_time=3600

Every input goes through tests/fuzz/harness.py check(): it raises when an invariant breaks. A
failing input is saved to --out (one file per kind of failure: the first few inputs of each, with
the message and traceback beside them); the run goes on. At the end (and every --every seconds)
it prints inputs run, refused/scrubbed, crashes, invariant failures, slow inputs, inputs per
second and the peak RSS of a worker.

The plain mode picks a seed (edi_samples/, the public corpus, tests/fuzz/crashes/) and applies one
to three X12-level mutations (tests/fuzz/mutate.py), from a seeded random generator: the same
--seed gives the same inputs. The atheris mode uses the same mutations as a custom mutator (and
libFuzzer's own byte mutations a third of the time), guided by coverage of scrubber and pyx12.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tests/ first: its fuzz package, not this file (bench/fuzz.py), is the `fuzz` to import.
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(1, str(ROOT))

KEEP_PER_SIGNATURE = 3  # inputs saved for each kind of failure


class SlowInput(BaseException):  # not an Exception: neither the scrubber nor the harness may catch it
    pass


def _on_alarm(signum, frame):
    raise SlowInput


def signature(exc: BaseException) -> str:
    """What kind of failure this is: the invariant (or exception type) and where it was raised
    in the scrubber, so a million inputs that hit one defect make one entry."""
    from fuzz.harness import InvariantError

    invariant = exc.invariant if isinstance(exc, InvariantError) else type(exc).__name__
    cause = exc.__cause__ or exc
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if "/scrubber/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    kind = type(cause).__name__ if cause is not exc else ""
    if isinstance(exc, InvariantError) and not frames:
        # No scrubber frame: the harness itself noticed; its message's first words say what.
        where = re.sub(r"\d+", "N", " ".join(str(exc).split(":", 1)[1].split()[:8]))
    return " ".join(p for p in (invariant, kind, where) if p)


class Findings:
    """Failing inputs in a folder: <hash>.837 with <hash>.txt (signature, message, traceback)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.seen: Counter[str] = Counter()

    def save(self, data: bytes, exc: BaseException, sig: str) -> None:
        self.seen[sig] += 1
        # Files are named <signature hash>-<input hash>: the folder itself says how many of a
        # kind are kept, across workers and runs.
        kind = hashlib.sha1(sig.encode()).hexdigest()[:8]
        if len(list(self.folder.glob(f"{kind}-*.837"))) >= KEEP_PER_SIGNATURE:
            return
        name = f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
        (self.folder / f"{name}.837").write_bytes(data)
        text = "".join(traceback.format_exception(exc))
        (self.folder / f"{name}.txt").write_text(f"{sig}\n\n{text}")


# ---------------------------------------------------------------- plain mode (processes)

_worker: dict = {}


def _init_worker(seed: str, out: str, timeout: float, memory_mb: int) -> None:
    from fuzz import harness, mutate, seeds

    if memory_mb:
        # A runaway input must not take the machine (shared) down: it fails here as MemoryError.
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    others = seeds.mutable_seeds() + [p.read_bytes() for p in sorted(seeds.CRASHES.glob("*.837"))]
    _worker.update(harness=harness, mutate=mutate, seeds=others, seed=seed, timeout=timeout,
                   findings=Findings(Path(out)))


def _run_batch(batch: int, size: int) -> dict:
    harness, mutate, seeds = _worker["harness"], _worker["mutate"], _worker["seeds"]
    counts: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    slowest = 0.0
    for i in range(size):
        rng = random.Random(f"{_worker['seed']}-{batch}-{i}")
        data = mutate.mutate(rng.choice(seeds), rng, seeds)
        start = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, _worker["timeout"])
        try:
            counts[harness.check(data)] += 1
        except SlowInput as exc:
            counts["slow"] += 1
            _worker["findings"].save(data, exc, "slow")
            failures["slow"] += 1
        except harness.InvariantError as exc:
            counts["crash" if exc.invariant == "crash" else "invariant"] += 1
            sig = signature(exc)
            _worker["findings"].save(data, exc, sig)
            failures[sig] += 1
        except BaseException as exc:  # the harness itself broke (MemoryError, RecursionError in it)
            counts["crash"] += 1
            sig = signature(exc)
            _worker["findings"].save(data, exc, sig)
            failures[sig] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - start)
    return {"counts": counts, "failures": failures, "slowest": slowest,
            "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def plain(args: argparse.Namespace) -> int:
    out = Path(args.out)
    batch = args.batch
    total: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    state = {"rss_kb": 0, "slowest": 0.0}
    start = last = time.monotonic()
    context = multiprocessing.get_context("fork")
    with context.Pool(args.jobs, _init_worker, (args.seed, str(out), args.timeout, args.memory_mb),
                      maxtasksperchild=args.tasks_per_worker) as pool:
        pending = []
        submitted = 0

        def report(final: bool = False) -> None:
            elapsed = time.monotonic() - start
            ran = sum(total.values())
            line = {"inputs": ran, "scrubbed": total["scrubbed"], "refused": total["refused"],
                    "crashes": total["crash"], "invariant_failures": total["invariant"], "slow": total["slow"],
                    "seconds": round(elapsed, 1), "inputs_per_second": round(ran / elapsed, 1) if elapsed else 0,
                    "peak_rss_mib": round(state["rss_kb"] / 1024, 1),
                    "slowest_input_s": round(state["slowest"], 2)}
            if final:
                line["failures"] = dict(failures.most_common())
                line["saved_to"] = str(out)
            print(json.dumps(line), flush=True)

        while True:
            out_of_time = args.seconds and time.monotonic() - start > args.seconds
            while not out_of_time and len(pending) < args.jobs * 2 and submitted * batch < args.inputs:
                size = min(batch, args.inputs - submitted * batch)
                pending.append(pool.apply_async(_run_batch, (submitted, size)))
                submitted += 1
            if not pending:
                break
            done = pending.pop(0).get()
            total.update(done["counts"])
            failures.update(done["failures"])
            state["rss_kb"] = max(state["rss_kb"], done["rss_kb"])
            state["slowest"] = max(state["slowest"], done["slowest"])
            if time.monotonic() - last > args.every:
                report()
                last = time.monotonic()
        report(final=True)
    return 1 if total["crash"] or total["invariant"] else 0


# ---------------------------------------------------------------- atheris mode (coverage-guided)

def with_atheris(args: argparse.Namespace, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=args.instrument.split(",")):
        from fuzz import harness, mutate, seeds

    out = Path(args.out)
    corpus = Path(args.corpus) if args.corpus else out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    # The work corpus starts as the small seeds (the 820-claim files take seconds an input) and the
    # known crashers; libFuzzer adds what reaches new code.
    small = seeds.mutable_seeds() + [p.read_bytes() for p in sorted(seeds.CRASHES.glob("*.837"))]
    if not any(corpus.iterdir()):
        for data in small:
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    findings = Findings(out / "failures")
    stats: Counter[str] = Counter()
    start = time.monotonic()
    last = [start]

    def report() -> None:
        elapsed = time.monotonic() - start
        ran = sum(stats.values())
        print(json.dumps({"inputs": ran, **stats, "seconds": round(elapsed, 1),
                          "inputs_per_second": round(ran / elapsed, 1),
                          "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          "failures": dict(findings.seen.most_common())}), file=sys.stderr, flush=True)

    def test_one_input(data: bytes) -> None:
        try:
            stats[harness.check(data)] += 1
        except harness.InvariantError as exc:
            if not args.keep_going:
                raise
            stats["crash" if exc.invariant == "crash" else "invariant"] += 1
            findings.save(data, exc, signature(exc))
        if time.monotonic() - last[0] > args.every:
            report()
            last[0] = time.monotonic()

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.33:
            return atheris.Mutate(data, max_size)
        return mutate.mutate(data, rng, small, max_size=max_size)

    argv = [sys.argv[0], f"-max_len={args.max_len}", f"-artifact_prefix={out}/", *libfuzzer_args, str(corpus)]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided with atheris; other -flags go "
                        "to libFuzzer (-runs=N, -max_total_time=S, -seed=N)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (plain mode)")
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs to run (plain mode)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (plain mode; 0: no limit)")
    parser.add_argument("--seed", default="0", help="the random seed: the same seed, the same inputs")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "scrubber-fuzz"),
                        help="where failing inputs are saved (and the atheris corpus)")
    parser.add_argument("--corpus", help="atheris: the work corpus (default OUT/corpus)")
    parser.add_argument("--keep-going", action="store_true", help="atheris: save a failing input and go on "
                        "rather than stop at the first")
    parser.add_argument("--instrument", default="scrubber,pyx12",
                        help="atheris: the packages whose coverage guides the search")
    parser.add_argument("--max-len", type=int, default=65536, help="atheris: largest input")
    parser.add_argument("--timeout", type=float, default=60, help="seconds before an input counts as slow")
    parser.add_argument("--memory-mb", type=int, default=3072, help="address-space limit of a worker (0: none)")
    parser.add_argument("--batch", type=int, default=200, help="inputs a worker runs between reports")
    parser.add_argument("--tasks-per-worker", type=int, default=50,
                        help="batches before a worker is replaced (memory that grows is not kept)")
    parser.add_argument("--every", type=float, default=60, help="seconds between progress lines")
    args, rest = parser.parse_known_args()
    if args.atheris:
        with_atheris(args, rest)
        return 0
    if rest:
        parser.error(f"unknown arguments {rest} (libFuzzer flags go with --atheris)")
    return plain(args)


if __name__ == "__main__":
    sys.exit(main())
