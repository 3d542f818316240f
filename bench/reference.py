"""Scrub a fixed set of inputs with every output, to check that a change leaves the outputs alone.

    python bench/reference.py save DIR      # scrub the inputs, write every output under DIR
    python bench/reference.py check DIR     # scrub them again and compare with DIR, byte for byte

The inputs: every file of edi_samples/ and of the shared corpus ($SCRUBBER_CORPUS, else
../shared/corpus/), and bench/results/claims_10000.837 when it exists (bench/run.py writes it).
Each folder is one `scrubber scrub` run with every output (`--outputs` all seven), `--format
json` (its document, the exit code and standard error are kept too) and a fixed `--today`, so
nothing depends on the day. The JSON report names the scrubber's version and rule digest, which a
speed change leaves alone; the CLI's own `--format json` document is compared as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = "corrected,rejected,json,html,csv,999,277ca"
TODAY = "2026-11-27"


def _groups() -> dict[str, list[Path]]:
    corpus = Path(os.environ.get("SCRUBBER_CORPUS", ROOT.parent / "shared" / "corpus"))
    groups = {
        "edi_samples": sorted(p for p in (ROOT / "edi_samples").iterdir() if p.suffix == ".837"),
        "corpus": sorted(p for p in corpus.iterdir() if p.is_file() and p.name not in ("README.md", "SOURCES.tsv")),
    }
    big = ROOT / "bench" / "results" / "claims_10000.837"
    if big.exists():
        groups["claims_10000"] = [big]
    return groups


def scrub_all(out: Path) -> None:
    scrubber = Path(sys.executable).parent / "scrubber"
    out = out.resolve()  # (each scrub runs in its inputs' folder)
    for name, inputs in _groups().items():
        folder = out / name
        folder.mkdir(parents=True)
        started = dt.datetime.now()
        done = subprocess.run(
            [str(scrubber), "scrub", *(path.name for path in inputs), "--out", str(folder), "--outputs", OUTPUTS,
             "--format", "json", "--today", TODAY, "--jobs", "1"],
            # Run in the inputs' folder, naming them by file name alone (the reports name their
            # input as given): a reference saved in one checkout compares equal in another (a worktree).
            capture_output=True, cwd=inputs[0].parent,
        )
        _mask_clock(folder, started, dt.datetime.now())
        # (the output folder, named in the document, differs from run to run)
        here = str(folder).encode()
        (out / f"{name}.stdout").write_bytes(done.stdout.replace(here, b"OUT"))
        (out / f"{name}.stderr").write_bytes(done.stderr.replace(here, b"OUT"))
        (out / f"{name}.exit").write_text(f"{done.returncode}\n")


def _mask_clock(folder: Path, started: dt.datetime, ended: dt.datetime) -> None:
    """The 999 and 277CA stamp their envelopes with the time of the run, and the HTML report says
    when it was made: those stamps (any minute of the run) are replaced by a fixed text."""
    minutes = []
    at = started.replace(second=0, microsecond=0)
    while at <= ended:
        minutes.append(at)
        at += dt.timedelta(minutes=1)
    patterns = []
    for m in minutes:
        patterns.append(re.escape(f"{m:%y%m%d}").encode() + rb"(.)" + re.escape(f"{m:%H%M}").encode())
        patterns.append(re.escape(f"{m:%Y%m%d}").encode() + rb"(.)" + re.escape(f"{m:%H%M}").encode())
        patterns.append(re.escape(f"scrubbed {m:%Y-%m-%d %H:%M}").encode())
    clock = re.compile(b"|".join(b"(?:" + p + b")" for p in patterns))
    for path in folder.iterdir():
        if path.suffix in (".999", ".277ca", ".html"):
            path.write_bytes(clock.sub(b"<CLOCK>", path.read_bytes()))


def differences(left: Path, right: Path) -> list[str]:
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, at: str) -> None:
        found.extend(f"only in {left.name}: {at}{n}" for n in cmp.left_only)
        found.extend(f"only in {right.name}: {at}{n}" for n in cmp.right_only)
        found.extend(f"differs: {at}{name}" for name in cmp.common_files
                     if not filecmp.cmp(Path(cmp.left) / name, Path(cmp.right) / name, shallow=False))
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{at}{name}/")

    walk(filecmp.dircmp(left, right), "")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("save", "check"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.action == "save":
        if args.folder.exists():
            parser.error(f"{args.folder} exists: name a new folder")
        scrub_all(args.folder)
        print(f"saved under {args.folder}")
        return 0
    with tempfile.TemporaryDirectory(prefix="scrubber-reference-") as work:
        fresh = Path(work) / "now"
        scrub_all(fresh)
        found = differences(args.folder, fresh)
    for line in found:
        print(line)
    print("identical" if not found else f"{len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
