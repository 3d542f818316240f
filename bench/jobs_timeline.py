"""Where a `--jobs 2` scrub by transaction sets, or by chunks of a large set, spends its time: a
timeline of the main process and of each worker, wall clock and CPU seconds, for one scrub of a
bench file (corrected 837 and JSON report, as bench/run.py's scrubber-jobs2 mode).

    python bench/jobs_timeline.py bench/results/claims_10000.837 [--jobs 2] [--repeat 3]

Each round runs in a fresh process. Times are seconds from the start of `scrub_stream`. Printed per
round: the steps of the main process (scan, envelope pass or pass 1 with its cuts, each set or
chunk spliced or scrubbed again here) and each worker's tasks (start, end, CPU seconds), then the
CPU seconds of every process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def _child(path: str, jobs: int) -> None:
    import resource

    from scrubber import ClaimFileWriter, JsonReport, load_rules, scrub_stream
    from scrubber.output import by_chunks, by_sets, parallel

    events: list[tuple] = []
    handle, log_path = tempfile.mkstemp(prefix="jobs-timeline-")  # the workers append their lines here
    os.close(handle)
    t0 = [0.0]

    def note(what: str, start: float, cpu: float) -> None:
        events.append((os.getpid(), what, start - t0[0], time.perf_counter() - t0[0],
                       time.process_time() - cpu))

    def timed(module: object, name: str, label: str) -> None:
        inner = getattr(module, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                note(label(args) if callable(label) else label, start, cpu)

        setattr(module, name, wrapper)

    def worker_line(what: str, start: float, cpu: float) -> None:
        with open(log_path, "a") as out:
            out.write(json.dumps([os.getpid(), what, start - t0[0], time.perf_counter() - t0[0],
                                  time.process_time() - cpu]) + "\n")

    set_task = by_sets._set_task

    def traced_set_task(job):
        import gc

        collected = [0.0, 0.0]

        def on_gc(phase: str, _info: dict) -> None:
            if phase == "start":
                collected[1] = time.perf_counter()
            else:
                collected[0] += time.perf_counter() - collected[1]

        gc.callbacks.append(on_gc)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return set_task(job)
        finally:
            gc.callbacks.remove(on_gc)
            segments = sum(span.count for span in job.spans)
            worker_line(f"set {job.number} ({len(job.spans)} sets, {segments} segments; collector "
                        f"{collected[0]:.3f} s)", start, cpu)

    traced_set_task.__module__, traced_set_task.__qualname__ = set_task.__module__, set_task.__qualname__
    by_sets._set_task = traced_set_task
    chunk_task = by_chunks._chunk_task

    def traced_chunk_task(job):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return chunk_task(job)
        finally:
            worker_line(f"chunk {job.number} ({job.segments} segments, {len(job.above)} loops and header above)",
                        start, cpu)

    traced_chunk_task.__module__, traced_chunk_task.__qualname__ = chunk_task.__module__, chunk_task.__qualname__
    by_chunks._chunk_task = traced_chunk_task
    start_worker = parallel._start_worker

    def traced_start(*args):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return start_worker(*args)
        finally:
            worker_line("worker start (initializer)", start, cpu)

    parallel._start_worker = traced_start
    timed(by_sets, "scan", "scan")
    timed(by_sets, "_splice", lambda args: f"splice set {args[0].number}")
    timed(by_sets, "scrub_set", lambda args: f"scrub set {args[0].number} HERE")
    timed(by_sets, "_forget", lambda args: f"forget set {args[0].number}")
    timed(parallel.Workers, "start", "workers.start (tables read, pool made)")
    # (A worker's own scrub_chunk is noted in its copy of `events`, never printed: only the main
    # process's are, the chunks scrubbed again here.)
    timed(by_chunks._Chunked, "_pass1", "pass 1, cutting the sets into chunks")
    timed(by_chunks, "_splice", lambda args: f"splice chunk {args[0].number}")
    timed(by_chunks, "scrub_chunk", lambda args: f"scrub chunk {args[0].number} HERE")
    rules = load_rules()
    with tempfile.TemporaryDirectory() as out:
        t0[0] = time.perf_counter()
        cpu0 = time.process_time()
        with open(path, "rb") as source, open(os.path.join(out, "c.837"), "wb") as corrected, \
                open(os.path.join(out, "r.json"), "w", encoding="utf-8") as text:
            scrub_stream(source, rules, [ClaimFileWriter(corrected), JsonReport(text, path, {})], jobs=jobs)
        wall = time.perf_counter() - t0[0]
        main_cpu = time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    os.unlink(log_path)
    print(json.dumps({"wall": wall, "main_cpu": main_cpu, "children_cpu": children.ru_utime + children.ru_stime,
                      "main": events, "workers": lines}))


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for round_number in range(args.repeat):
        done = subprocess.run([sys.executable, __file__, "--child", args.path, str(args.jobs)],
                              capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"round {round_number + 1}: wall {r['wall']:.2f} s, CPU main {r['main_cpu']:.2f} s, "
              f"workers {r['children_cpu']:.2f} s, all {r['main_cpu'] + r['children_cpu']:.2f} s")
        rows = [("main", *e[1:]) for e in r["main"]] + [(f"worker {e[0]}", *e[1:]) for e in r["workers"]]
        for who, what, start, end, cpu in sorted(rows, key=lambda row: row[2]):
            print(f"  {start:6.3f} -> {end:6.3f}  ({end - start:5.3f} s wall, {cpu:5.3f} CPU)  {who}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
