"""The seed corpus, read where it lives: the synthetic samples of edi_samples/, the public corpus
(../shared/corpus, or $SCRUBBER_CORPUS, provenance in its SOURCES.tsv) and the reproducers of
tests/fuzz/crashes/. Not copied: the samples are in this repository already and the corpus is
what the rest of the test suite reads too, so a copy would only drift from them."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "edi_samples"
CORPUS = Path(os.environ.get("SCRUBBER_CORPUS", ROOT.parent / "shared" / "corpus"))
CRASHES = Path(__file__).resolve().parent / "crashes"
NOT_CLAIMS = {"README.md", "SOURCES.tsv"}
# Seeds larger than this (the 820-claim files) take seconds a scrub: run once, never mutated.
MUTABLE_SIZE = 20_000


def seed_dirs() -> list[Path]:
    if not CORPUS.is_dir():
        raise RuntimeError(f"the public 837 corpus is missing: {CORPUS} (set SCRUBBER_CORPUS)")
    return [SAMPLES, CORPUS]


def seed_files() -> list[Path]:
    """Every seed, samples first, in name order."""
    return [p for d in seed_dirs() for p in sorted(d.iterdir()) if p.is_file() and p.name not in NOT_CLAIMS]


def mutable_seeds() -> list[bytes]:
    """The seeds small enough to mutate thousands of times."""
    return [p.read_bytes() for p in seed_files() if p.stat().st_size <= MUTABLE_SIZE]
