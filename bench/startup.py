"""How long a scrub of a small file takes to start and finish, and what loading costs.

    python bench/startup.py [--runs 7] [--against DIR]...

Each measurement is a fresh process; the figure is the median of the runs, in wall-clock seconds and
in CPU seconds (user + system of the child: on a shared machine the wall clock mostly measures the
neighbours). The floor is the interpreter starting and doing nothing (`python -c pass`), measured in
the same run. The lookup modes also give the CPU time of importing scrubber.refdata and the lookups,
measured inside the process after `import scrubber` ("step"): the least noisy figure of the table.
`--against DIR` times the same modes in another checkout of the scrubber (one with its own `.venv`,
e.g. a `git worktree` of an earlier commit), interleaved with this one so that the machine's load
hits both alike, and gives each figure as a ratio to this checkout's. A mode the other checkout
cannot run (it has no reference data yet) shows n/a. The one-claim file is made from the first
claim of edi_samples/drugs_837p.837.

The reference data modes run with XDG_CACHE_HOME pointing at a folder of the benchmark's own: "cold"
a new, empty one each run (the first run after an install or a data import builds the cache), "warm"
one filled before the first measured run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL_837I = ROOT / "edi_samples" / "clean_837i.837"  # two claims of J9032
DRUGS_837P = ROOT / "edi_samples" / "drugs_837p.837"  # several drugs a claim, with NDCs

LOAD_RULES = "from scrubber import load_rules; load_rules()"
LOAD_TABLES = ("from scrubber import load_rules; r = load_rules(); r.hcpcs; r.ndc_crosswalk; r.icd10; "
               "from scrubber.x12.ig import _load_map; _load_map('x12.control.00501.xml'); "
               "_load_map('837.5010.X222.A1.xml'); _load_map('837Q3.I.5010.X223.A1.xml')")
# Prints the CPU seconds of the lookups alone (after `import scrubber`), the figure of the "step" column.
FIRST_LOOKUP = ("import datetime, time, scrubber; start = time.process_time(); "
                "from scrubber.refdata import ReferenceData; "
                "d = ReferenceData.open(); day = datetime.date(2025, 11, 3); d.drug('J9312', day); "
                "d.codes_for_ndc('50242-0051-21', day); print(time.process_time() - start)")


def one_claim_file(source: Path, target: Path) -> Path:
    """The first claim of `source` alone (drugs_837p's P-OK-MULTI-DRUG: nine drug lines), a valid
    837 of its own: the segments up to the second subscriber loop, then SE (recounted), GE, IEA."""
    text = source.read_text(encoding="ascii")
    terminator = text[105]  # ISA is fixed width: its segment terminator follows ISA16
    segments = [s.strip() for s in text.split(terminator) if s.strip()]
    start = next(i for i, s in enumerate(segments) if s.startswith("ST*"))
    subscribers = [i for i, s in enumerate(segments) if s.startswith("HL*") and s.split("*")[3] == "22"]
    end = subscribers[1] if len(subscribers) > 1 else len(segments) - 3
    se, ge, iea = segments[-3:]
    se = "*".join(["SE", str(end - start + 1), se.split("*")[2]])
    target.write_text("".join(f"{s}{terminator}\n" for s in [*segments[:end], se, ge, iea]), encoding="ascii")
    return target


def modes(python: str, out: str) -> dict[str, tuple[list[str], str]]:
    """Each mode: its command and the cache it runs with ("", "cold" or "warm")."""
    scrub = [python, "-m", "scrubber", "scrub", "--out", out]
    return {
        "interpreter alone (floor)": ([python, "-c", "pass"], ""),
        "import scrubber": ([python, "-c", "import scrubber"], ""),
        "+ load and check the rule data": ([python, "-c", LOAD_RULES], ""),
        "+ load every code table and IG map": ([python, "-c", LOAD_TABLES], ""),
        "first drug and NDC lookup, cache cold": ([python, "-c", FIRST_LOOKUP], "cold"),
        "first drug and NDC lookup, cache warm": ([python, "-c", FIRST_LOOKUP], "warm"),
        "scrub 2-claim 837I (clean_837i), cache warm": ([*scrub, str(SMALL_837I)], "warm"),
        "scrub one claim, nine drug lines, cache cold": ([*scrub, str(Path(out, "one_claim.837"))], "cold"),
        "scrub one claim, nine drug lines, cache warm": ([*scrub, str(Path(out, "one_claim.837"))], "warm"),
        "scrub multi-drug 837P (drugs_837p), cache cold": ([*scrub, str(DRUGS_837P)], "cold"),
        "scrub multi-drug 837P (drugs_837p), cache warm": ([*scrub, str(DRUGS_837P)], "warm"),
    }


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float | None] | None:
    """(wall, CPU, step CPU) seconds of one run, or None when the command fails (exit 1 is a scrub
    that rejected a claim: a run like any other). The step is what the command prints, if a number."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scrub = "scrub" in command
    if not (done.returncode == 0 or (scrub and done.returncode == 1)):
        return None
    try:
        step = float(done.stdout.decode().strip().splitlines()[-1]) if not scrub else None
    except (ValueError, IndexError):
        step = None
    return wall, cpu, step


def python_of(tree: Path) -> str:
    candidate = tree / ".venv" / "bin" / "python"
    return str(candidate) if tree != ROOT and candidate.exists() else sys.executable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another checkout with its own .venv, timed in the same run (repeatable)")
    args = parser.parse_args()
    trees = [ROOT, *(p.resolve() for p in args.against)]
    with tempfile.TemporaryDirectory() as scratch:
        one_claim_file(DRUGS_837P, Path(scratch, "one_claim.837"))
        warm = {tree: Path(scratch, f"warm-{n}") for n, tree in enumerate(trees)}
        runs: dict[tuple[Path, str], list[tuple[float, float, float | None] | None]] = {}
        names = list(modes(sys.executable, scratch))
        for tree in trees:  # fill the warm caches, outside the measured runs
            command, _ = modes(python_of(tree), scratch)["first drug and NDC lookup, cache warm"]
            subprocess.run(command, cwd=tree, env=os.environ | {"XDG_CACHE_HOME": str(warm[tree])},
                           capture_output=True, check=False)
        for run in range(args.runs):  # interleaved, so noise hits every mode and tree alike
            for name in names:
                for tree in trees:
                    command, cache = modes(python_of(tree), scratch)[name]
                    home = {"warm": str(warm[tree]), "cold": tempfile.mkdtemp(dir=scratch, prefix=f"cold-{run}-"),
                            "": str(warm[tree])}[cache]
                    env = os.environ | {"XDG_CACHE_HOME": home}
                    runs.setdefault((tree, name), []).append(timed(command, tree, env))
    print(f"# Start-up (median of {args.runs} runs each, fresh processes; "
          f"`python bench/startup.py --runs {args.runs}{''.join(f' --against {p}' for p in args.against)}`)\n")
    print(f"Load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}. Trees: "
          + "; ".join(f"[{n}] {tree}" for n, tree in enumerate(trees)) + "\n")
    header = "| what | " + " | ".join(f"[{n}] wall s | [{n}] CPU s | [{n}] step CPU ms" +
                                      (f" | [{n}] CPU / [0] | [{n}] step / [0]" if n else "")
                                      for n in range(len(trees))) + " |"
    print(header)
    print("|---|" + "---:|" * (header.count("|") - 2))
    for name in names:
        cells = []
        base_cpu, base_step = _median(runs[(ROOT, name)], 1), _median(runs[(ROOT, name)], 2)
        for n, tree in enumerate(trees):
            wall, cpu, step = (_median(runs[(tree, name)], i) for i in range(3))
            cells += [_fmt(wall), _fmt(cpu), "" if step is None else f"{step * 1000:.1f}"]
            if n:
                cells.append(f"{cpu / base_cpu:.2f}" if cpu is not None and base_cpu else "n/a")
                cells.append(f"{step / base_step:.1f}" if step is not None and base_step else "")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


def _median(values: list[tuple[float, float, float | None] | None], index: int) -> float | None:
    done = [v[index] for v in values if v is not None and v[index] is not None]
    return statistics.median(done) if done and len(done) == len(values) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
