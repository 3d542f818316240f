"""The JSON report: one per input, streamed claim by claim. Its shape is a published contract
(report.schema.json next to this module); change it only with a new report_version."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ..rules.engine import ClaimResult
from ..rules.findings import Finding
from .sink import ScrubbedClaim, Sink
from .summary import Summary

REPORT_VERSION = "1.1"


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


class JsonReport(Sink):
    """Writes `{"report_version", "input", "scrubber", "claims": [...], "summary", "errors"}`
    with the claims streamed as they are scrubbed, so memory does not grow with the file."""

    def __init__(self, stream: TextIO, input_name: str, scrubber: dict[str, Any]) -> None:
        self._stream = stream
        self._first = True
        head = {"report_version": REPORT_VERSION, "input": input_name, "scrubber": scrubber}
        text = json.dumps(head, indent=2)
        stream.write(text[:-2] + ',\n  "claims": [')

    def claim(self, item: ScrubbedClaim) -> None:
        self.write_claim(item.result)

    def write_claim(self, result: ClaimResult) -> None:
        text = json.dumps(claim_dict(result), separators=(",", ":"))
        self._stream.write(("\n    " if self._first else ",\n    ") + text)
        self._first = False

    def finish(self, summary: Summary, trailer: str = "") -> None:
        tail = {"summary": summary.as_dict(), "errors": summary.errors,
                "unattributed": [item.as_dict() for item in summary.unattributed]}
        body = json.dumps(tail, indent=2)
        self._stream.write(("\n  ],\n" if not self._first else "],\n") + body[2:] + "\n")
