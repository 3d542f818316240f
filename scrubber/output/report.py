"""The JSON report: one per input, streamed claim by claim. Its shape is a published contract
(report.schema.json next to this module); change it only with a new report_version."""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

from ..rules.engine import ClaimResult
from ..rules.findings import Finding
from .sink import FragmentSink, ScrubbedClaim, Sink
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


def claim_dict(result: ClaimResult, with_findings: bool = True) -> dict[str, Any]:
    claim = result.claim
    found = {
        "claim_id": claim.id,
        "disposition": result.disposition,
        "transaction_set": claim.transaction.control_number,
        "segment": claim.clm_segment,
    }
    if with_findings:  # last: JsonReport streams them after the rest
        found["findings"] = [finding_dict(f) for f in result.findings]
    return found


_COMPACT = (",", ":")
# json.dumps(..., separators=_COMPACT) builds an encoder a call; this is the one it would build.
_encode_compact = json.JSONEncoder(separators=_COMPACT).encode
# What that encoder writes a string with (ensure_ascii, the default): a claim's head is written
# from its four values directly, not through a dict and the encoder (a tenth of a clean claim's
# report time went there).
_encode_string = json.encoder.encode_basestring_ascii


def _scalar(value: str | int | None) -> str:
    """A string, an integer or None, as _encode_compact writes it."""
    if isinstance(value, str):
        return _encode_string(value)
    if value is None:
        return "null"
    if type(value) is int:
        return int.__repr__(value)
    return _encode_compact(value)


def _claim_head(result: ClaimResult) -> str:
    """`_encode_compact(claim_dict(result, with_findings=False))` without its closing brace."""
    claim = result.claim
    segment = claim.clm_segment
    return (f'{{"claim_id":{_scalar(claim.id)},"disposition":{_scalar(result.disposition)},'
            f'"transaction_set":{_scalar(claim.transaction.control_number)},"segment":{_scalar(segment)}')


_FLUSH_PARTS = 512  # pieces of a claim's text gathered before a write


class JsonReport(Sink):
    """Writes `{"report_version", "input", "scrubber", "claims": [...], "summary", "errors"}`
    with the claims streamed as they are scrubbed, so memory does not grow with the file."""

    parts_hold_claims_only = True  # (Sink.chunk_fragments)

    def __init__(self, stream: TextIO, input_name: str, scrubber: dict[str, Any]) -> None:
        self._stream = stream
        self._first = True
        head = {"report_version": REPORT_VERSION, "input": input_name, "scrubber": scrubber}
        text = json.dumps(head, indent=2)
        stream.write(text[:-2] + ',\n  "claims": [')

    def claim(self, item: ScrubbedClaim) -> None:
        self.write_claim(item.result)

    def write_claim(self, result: ClaimResult) -> None:
        """The claim as `json.dumps(claim_dict(result))` writes it, byte for byte, but a finding at a
        time: a claim with 100,000 findings is never one dict tree and one string in memory."""
        findings = result.findings
        parts = ["\n    " if self._first else ",\n    ", _claim_head(result), ',"findings":[']
        for number, finding in enumerate(findings):
            if number:
                parts.append(",")
            parts.append(_encode_compact(finding_dict(finding)))
            if len(parts) >= _FLUSH_PARTS:
                self._stream.write("".join(parts))
                parts = []
        parts.append("]}")
        self._stream.write("".join(parts))
        self._first = False

    def fragments(self) -> type[JsonClaims]:
        return JsonClaims

    def splice(self, fragment: str) -> None:
        """Claims as JsonClaims wrote them, each after a comma: the first of the report goes without."""
        if not fragment:
            return
        self._stream.write(fragment[1:] if self._first else fragment)
        self._first = False

    def finish(self, summary: Summary, trailer: str = "") -> None:
        tail = {"summary": summary.as_dict(), "errors": summary.errors,
                "unattributed": [item.as_dict() for item in summary.unattributed]}
        body = json.dumps(tail, indent=2)
        self._stream.write(("\n  ],\n" if not self._first else "],\n") + body[2:] + "\n")


class JsonClaims(JsonReport, FragmentSink):
    """The claims of one transaction set, as JsonReport writes them after a claim before them."""

    def __init__(self) -> None:  # no head: only claims
        self._stream = io.StringIO()
        self._first = False

    def take(self) -> str:
        return self._stream.getvalue()
