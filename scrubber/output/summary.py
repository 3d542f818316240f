"""The counts of a scrub: claims by disposition, findings by rule, file-level problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..rules.engine import ClaimResult


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

    def merge(self, other: Summary) -> None:
        """Add another input's counts (for the total of a run)."""
        for key in ("claims", "accepted", "corrected", "rejected"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.by_rule.update(other.by_rule)
        self.messages.update(other.messages)
