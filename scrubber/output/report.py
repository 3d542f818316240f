"""The JSON report: one per input, streamed claim by claim. Its shape is a published contract
(report.schema.json next to this module); change it only with a new report_version."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..rules.engine import ClaimResult
from ..rules.findings import Finding

REPORT_VERSION = "1.0"


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule.id,
        "name": finding.rule.name,
        "category": finding.rule.category,
        "severity": finding.severity,
        "message": finding.message,
        "line": finding.line,
        "segment": finding.segment,
        "segment_id": finding.seg_id,
        "element": finding.element,
        "fix": finding.fix.safety if finding.fix else None,
        "fixed": finding.fixed,
        "before": finding.value,
        "after": finding.fix.after if finding.fix else None,
    }


def claim_dict(result: ClaimResult) -> dict[str, Any]:
    claim = result.claim
    return {
        "claim_id": claim.id,
        "disposition": result.disposition,
        "transaction_set": claim.transaction.control_number,
        "segment": claim.claim_id.segment.index if claim.claim_id else None,
        "findings": [finding_dict(f) for f in result.findings],
    }


@dataclass
class Summary:
    claims: int = 0
    accepted: int = 0
    corrected: int = 0
    rejected: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)  # a rule's summary, for the CLI
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: ClaimResult) -> None:
        self.claims += 1
        setattr(self, result.disposition, getattr(self, result.disposition) + 1)
        for finding in result.findings:
            self.by_rule[finding.rule.id] += 1
            self.messages.setdefault(finding.rule.id, finding.rule.summary)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claims": self.claims,
            "accepted": self.accepted,
            "corrected": self.corrected,
            "rejected": self.rejected,
            "by_rule": dict(self.by_rule.most_common()),
        }


class JsonReport:
    """Writes `{"report_version", "input", "scrubber", "claims": [...], "summary", "errors"}`
    with the claims streamed as they are scrubbed, so memory does not grow with the file."""

    def __init__(self, stream: TextIO, input_name: str, scrubber: dict[str, Any]) -> None:
        self._stream = stream
        self._first = True
        head = {"report_version": REPORT_VERSION, "input": input_name, "scrubber": scrubber}
        text = json.dumps(head, indent=2)
        stream.write(text[:-2] + ',\n  "claims": [')

    def claim(self, result: ClaimResult) -> None:
        text = json.dumps(claim_dict(result), separators=(",", ":"))
        self._stream.write(("\n    " if self._first else ",\n    ") + text)
        self._first = False

    def finish(self, summary: Summary) -> None:
        tail = {"summary": summary.as_dict(), "errors": summary.errors}
        body = json.dumps(tail, indent=2)
        self._stream.write(("\n  ],\n" if not self._first else "],\n") + body[2:] + "\n")
