"""Shared fixtures: the rule set, the sample and corpus files, and a scrub helper."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import scrubber
from scrubber import FixMode, RunContext, load_rules

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "edi_samples"
# The public corpus lives beside the repository (../shared/corpus); SCRUBBER_CORPUS moves it.
CORPUS = Path(os.environ.get("SCRUBBER_CORPUS", ROOT.parent / "shared" / "corpus"))
# Service dates are checked against this day in the tests (S004), as tools/make_samples.py does.
TODAY = dt.date(2026, 11, 27)


def model_claims(source) -> list:
    """The claims of a file (a binary stream) as the pipeline's claim model reads them, with the
    file's delimiters: [(claim, delimiters)] (no validation)."""
    from scrubber.model.build import TransactionReader
    from scrubber.x12.envelope import EnvelopeReader, TransactionEnd, TransactionSet
    from scrubber.x12.tokenizer import Segment, SegmentReader

    reader = SegmentReader(source)
    d = reader.delimiters
    found = []
    transaction = None
    for event in EnvelopeReader(reader, d):
        if isinstance(event, TransactionSet):
            transaction = TransactionReader(event, d)
        elif transaction is not None and isinstance(event, Segment | TransactionEnd):
            done = transaction.feed(event) if isinstance(event, Segment) else transaction.finish(event.count - 1)
            if done is not None:
                found.append((done, d))
                found.extend((other, d) for other in transaction.more)  # (claims with no CLM ended with it)
                transaction.more = []
    return found


def make_a_rule_raise(monkeypatch, claim_id: str = "P-OK-MEDICARE-JZ") -> None:
    """A rule (the units checks) raises on one claim, as a bug in a rule would."""
    from scrubber.rules import units

    original = units.check

    def check(claim, rules, out):
        if claim.id == claim_id:
            raise ZeroDivisionError("a bug in a rule")
        return original(claim, rules, out)

    monkeypatch.setattr(units, "check", check)


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        raise RuntimeError(f"the public 837 corpus is missing: {CORPUS} (set SCRUBBER_CORPUS)")
    return sorted(p for p in CORPUS.iterdir() if p.name not in ("README.md", "SOURCES.tsv"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache_folder(tmp_path_factory):
    """The reference data cache (scrubber/refdata/cache.py) of the tests and of the scrubbers they
    start goes to a folder of the session's own, never to the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _signal_dispositions_restored():
    """`scrubber watch` ignores SIGINT and SIGTERM once its run is over (the process is about to
    exit). Run in process by CliRunner, it left the test process ignoring them, and every scrubber
    the later tests started inherited that: Ctrl-C did nothing to them (test_jobs failed on it)."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        if signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)


@pytest.fixture(scope="session")
def rules():
    return load_rules()


@dataclass
class Scrubbed:
    report: dict
    corrected: bytes | None  # None when no claim could go out
    rejected: bytes | None = None  # None when no claim was rejected

    def claim(self, claim_id: str) -> dict:
        matches = [c for c in self.report["claims"] if c["claim_id"] == claim_id]
        assert len(matches) == 1, f"{claim_id}: {len(matches)} claims with that id"
        return matches[0]

    def rules_of(self, claim_id: str) -> set[str]:
        return {f["rule"] for f in self.claim(claim_id)["findings"]}


def scrub_bytes(data: bytes, rules, mode: FixMode = FixMode.SAFE) -> Scrubbed:
    result = scrubber.scrub(data, rules=rules, fix=mode, run=RunContext.new(TODAY))
    return Scrubbed(result.report, result.corrected, result.rejected)


@pytest.fixture(scope="session")
def scrub(rules):
    """scrub(path_or_bytes, mode=FixMode.SAFE) -> Scrubbed"""

    def run(source, mode: FixMode = FixMode.SAFE) -> Scrubbed:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        return scrub_bytes(data, rules, mode)

    return run


@pytest.fixture(scope="session")
def samples(scrub):
    """The four sample files, scrubbed once with the default fixes."""
    return {p.name: scrub(p) for p in sorted(SAMPLES.glob("*.837"))}


@pytest.fixture(scope="session")
def report_schema():
    import jsonschema

    schema = json.loads((ROOT / "scrubber" / "output" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
