"""Peak memory of the whole scrub against the number of claims, in sets of 5,000 and in one set
(issue 11, §3: "Peak memory for 1,000,000 claims, in sets of 5,000 and in one set: under 100 MB,
and within 1.1x of the peak for 10,000 claims").

    python bench/memory.py                                   # 10,000 and 100,000 claims
    python bench/memory.py --claims 10000 1000000            # the issue's sizes (long: see README)
    python bench/memory.py --layouts one --outputs all       # one set only, every output kind
    python bench/memory.py --jobs 2                          # two worker processes, as the CLI's default here

Unlike bench/run.py, no pyx12 baseline and no floor: only the scrub, with whichever validator
the pipeline runs in its pass 1 (this script does not choose one). Each measurement runs in a
fresh Python process (`--child`) that loads the rules and runs `scrub_stream` over the file with
the sinks asked for (default: the corrected 837 and the JSON report, the issue's "whole scrub"),
writing to temporary files; its peak RSS is `getrusage(RUSAGE_SELF).ru_maxrss`, read in that
process. With `--jobs N` (N > 1) the scrub runs in N worker processes (forked, as the CLI's are),
closed normally at the end; the main process's peak is measured as above and the workers' largest
peak is `getrusage(RUSAGE_CHILDREN).ru_maxrss` once they have ended (the largest of the children,
not their sum). The input files are written by bench/generate.py into bench/results/ (kept, not
committed): `memory_N_sets.837` (transaction sets of 5,000 claims) and `memory_N_one.837` (one
set of N claims, `--per-transaction N`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PEAK_TARGET_MIB = 100.0  # under 100 MB at every size ...
FLAT_TARGET = 1.10  # ... and within 1.1x of the peak at the smallest size, for each layout
LAYOUTS = {"sets": 5000, "one": None}  # claims per transaction set (None: all in one)
OUTPUT_CHOICES = {
    "report": ("corrected", "json"),
    "all": ("corrected", "rejected", "json", "html", "csv", "999", "277ca"),
}


def _peak_rss_mib(who: int | None = None) -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF if who is None else who).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # macOS bytes, Linux KiB


def child(path: str, claims: int, outputs: tuple[str, ...], jobs: int = 1) -> dict:
    """One scrub of `path` in this (fresh) process: its time, CPU time and peak memory."""
    import contextlib
    import resource
    import tempfile

    from scrubber import load_rules, scrub_stream
    from scrubber.output.files import KINDS, make_sink
    from scrubber.output.parallel import Workers, one_malloc_arena
    from scrubber.output.pipeline import RunContext

    after_import = _peak_rss_mib()
    with tempfile.TemporaryDirectory(prefix="scrubber-memory-") as out, contextlib.ExitStack() as files:
        wall, cpu = time.perf_counter(), time.process_time()
        rules = load_rules()
        sinks = []
        for kind in outputs:
            text = KINDS[kind].text
            stream = files.enter_context(open(os.path.join(out, kind), "w" if text else "wb",
                                              **({"encoding": "utf-8", "newline": ""} if text else {})))
            sinks.append(make_sink(kind, stream, path, {}))
        # The workers are closed (not stopped) at the end, so their usage is counted in RUSAGE_CHILDREN.
        if jobs > 1:
            one_malloc_arena()  # as the CLI does when it runs workers
        with Workers(jobs) as workers, open(path, "rb") as source:
            run = RunContext.new(workers=workers if jobs > 1 else None)
            summary = scrub_stream(source, rules, sinks, run=run)
            run.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if summary.claims != claims or summary.accepted != claims:
        raise SystemExit(f"{path}: expected {claims} claims, all accepted; got {summary.as_dict()}")
    return {"claims": claims, "jobs": jobs, "seconds": wall, "cpu_seconds": cpu, "peak_rss_mib": _peak_rss_mib(),
            "rss_after_import_mib": after_import,
            "workers_peak_rss_mib": _peak_rss_mib(resource.RUSAGE_CHILDREN) if jobs > 1 else None,
            "workers_cpu_seconds": children.ru_utime + children.ru_stime}


def ensure_file(claims: int, layout: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"memory_{claims}_{layout}.837"
    if not path.exists():
        per = LAYOUTS[layout] or claims
        log(f"writing {path.name} ({claims:,} claims, {per:,} a set)")
        partial = path.with_suffix(".partial")
        subprocess.run([sys.executable, str(BENCH / "generate.py"), str(claims), str(partial),
                        "--per-transaction", str(per)], check=True, stdout=subprocess.DEVNULL)
        partial.rename(path)
    return path


def measure(path: Path, claims: int, outputs: str, jobs: int = 1) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(path), str(claims), "--outputs", outputs,
                           "--jobs", str(jobs)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the scrub of {path} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def render(rows: list[dict], outputs: str) -> str:
    lines = [f"outputs: {', '.join(OUTPUT_CHOICES[outputs])}; targets: peak under {PEAK_TARGET_MIB:.0f} MiB, "
             f"at most {FLAT_TARGET:.2f}x the smallest size's peak (per layout and jobs)", "",
             "| claims | layout | jobs | seconds | CPU s (main) | CPU s (workers) | us/claim (CPU, all) "
             "| peak RSS MiB (main) | after imports MiB | peak / smallest | workers' peak MiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    smallest: dict[tuple[str, int], float] = {}
    for row in rows:
        jobs = row.get("jobs", 1)
        base = smallest.setdefault((row["layout"], jobs), row["peak_rss_mib"])
        ratio = row["peak_rss_mib"] / base
        verdict = "" if ratio <= FLAT_TARGET and row["peak_rss_mib"] < PEAK_TARGET_MIB else " (over target)"
        workers = row.get("workers_peak_rss_mib")
        worker_cpu = row.get("workers_cpu_seconds", 0.0)
        cpu_all = row["cpu_seconds"] + worker_cpu
        lines.append(f"| {row['claims']:,} | {row['layout']} | {jobs} | {row['seconds']:.1f} | "
                     f"{row['cpu_seconds']:.1f} | {worker_cpu:.1f} | {cpu_all / row['claims'] * 1e6:.0f} | "
                     f"{row['peak_rss_mib']:.1f} | {row['rss_after_import_mib']:.1f} | {ratio:.2f}x{verdict} | "
                     f"{'-' if workers is None else f'{workers:.1f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--layouts", nargs="+", choices=tuple(LAYOUTS), default=list(LAYOUTS))
    parser.add_argument("--outputs", choices=tuple(OUTPUT_CHOICES), default="report",
                        help="report: the corrected 837 and the JSON report; all: every output kind")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1],
                        help="worker processes (each value measured in turn; the CLI's default is the cores)")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "CLAIMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), OUTPUT_CHOICES[args.outputs], args.jobs[0])))
        return 0
    rows = []
    for claims in sorted(args.claims):
        for layout in args.layouts:
            path = ensure_file(claims, layout)
            for jobs in args.jobs:
                log(f"scrubbing {path.name} with {jobs} job(s) ...")
                row = {"layout": layout, **measure(path, claims, args.outputs, jobs)}
                workers = row["workers_peak_rss_mib"]
                log(f"  {row['seconds']:.1f} s, peak {row['peak_rss_mib']:.1f} MiB"
                    + (f", workers' peak {workers:.1f} MiB" if workers is not None else ""))
                rows.append(row)
    table = render(rows, args.outputs)
    print(table)
    (RESULTS / "memory.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "memory.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
