"""The Python API: scrub a claim file in memory and get everything back on one Result."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .output.corrected import ClaimFileWriter
from .output.pipeline import RunContext, scrub_stream
from .output.report import JsonReport
from .output.sink import ScrubbedClaim, Sink
from .output.summary import Summary
from .rules.engine import FixMode
from .rules.findings import Finding
from .rules.ruleset import RuleSet, load_rules
from .x12.guide import DEFAULT_VALIDATOR

Source = str | os.PathLike[str] | bytes | BinaryIO


@dataclass
class ClaimOutcome:
    """One claim: its id (CLM01), its disposition and its findings."""

    claim_id: str
    disposition: str  # accepted, corrected or rejected
    transaction_set: str  # ST02
    findings: list[Finding]


@dataclass
class Result:
    """Everything a scrub made: the files, the claims with their findings, the counts, and the
    JSON report (the same document `scrubber scrub` writes) as a dict."""

    corrected: bytes | None  # the claims that go out; None when no claim can
    rejected: bytes | None  # the rejected claims as they came; None when none was rejected
    claims: list[ClaimOutcome]
    summary: Summary
    report: dict[str, Any] = field(repr=False)

    @property
    def findings(self) -> list[Finding]:
        return [f for claim in self.claims for f in claim.findings]

    @property
    def errors(self) -> list[dict[str, Any]]:
        """File-level problems that did not stop the scrub (a wrong count, a set without claims)."""
        return self.summary.errors


class _Collector(Sink):
    def __init__(self) -> None:
        self.claims: list[ClaimOutcome] = []

    def claim(self, item: ScrubbedClaim) -> None:
        result = item.result
        self.claims.append(ClaimOutcome(result.claim.id, result.disposition,
                                        result.claim.transaction.control_number, result.findings))


def scrub(source: Source, *, rules: RuleSet | None = None, fix: bool | FixMode = True,
          run: RunContext | None = None, validator: str = DEFAULT_VALIDATOR, jobs: int = 1) -> Result:
    """Scrub one 837 (a path, its bytes, or a binary stream) and return what came of it.

    `fix`: True applies the safe fixes, False none, or a FixMode (FixMode.UNSAFE for unsafe
    fixes too). `validator`: "compiled" (the default) or "pyx12" (pyx12's walker). `jobs` > 1
    checks the claims in that many worker processes (same result). Raises InputError when the
    input cannot be read as an 837, RuleDataError when `rules` is None and the built-in rule
    data is invalid.
    """
    mode = fix if isinstance(fix, FixMode) else FixMode.SAFE if fix else FixMode.NONE
    rules = rules or load_rules()
    own_run = run is None
    run = run or RunContext.new()
    name = str(source) if isinstance(source, str | os.PathLike) else "<bytes>" if isinstance(source, bytes) \
        else getattr(source, "name", "<stream>")
    corrected, rejected, text = io.BytesIO(), io.BytesIO(), io.StringIO()
    corrected_writer, rejected_writer = ClaimFileWriter(corrected), ClaimFileWriter(rejected, rejected=True)
    collector = _Collector()
    sinks = [corrected_writer, rejected_writer, JsonReport(text, name, {"name": "scrubber"}), collector]
    try:
        if isinstance(source, bytes):
            summary = scrub_stream(io.BytesIO(source), rules, sinks, mode, run=run, validator=validator, jobs=jobs)
        elif isinstance(source, str | os.PathLike):
            with Path(source).open("rb") as stream:
                summary = scrub_stream(stream, rules, sinks, mode, run=run, validator=validator, jobs=jobs)
        else:
            summary = scrub_stream(source, rules, sinks, mode, run=run, validator=validator, jobs=jobs)
    finally:
        if own_run:
            run.close()
    return Result(
        corrected=corrected.getvalue() if corrected_writer.claims_written else None,
        rejected=rejected.getvalue() if rejected_writer.claims_written else None,
        claims=collector.claims,
        summary=summary,
        report=json.loads(text.getvalue()),
    )
