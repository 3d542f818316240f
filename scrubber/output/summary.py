"""The counts of a scrub: claims by disposition, findings by rule, file-level problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..rules.engine import ClaimResult


@dataclass(frozen=True, slots=True)
class Unattributed:
    """A CLM that is in neither 837 written: where it is, its CLM01, and why."""

    segment: int
    claim_id: str | None
    reason: str

    @property
    def label(self) -> str:
        """How the text reports name it: "claim <CLM01>", or what it lacks."""
        return f"claim {self.claim_id}" if self.claim_id else "claim with no CLM01"

    def as_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "claim_id": self.claim_id, "reason": self.reason}


@dataclass
class Summary:
    claims: int = 0
    accepted: int = 0
    corrected: int = 0
    rejected: int = 0
    # Claims that could not be checked (in neither 837): they count in `claims`, and a run that
    # has any never exits 0.
    unattributed: list[Unattributed] = field(default_factory=list)
    by_rule: Counter[str] = field(default_factory=Counter)
    messages: dict[str, str] = field(default_factory=dict)  # a rule's summary, for the CLI
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: ClaimResult) -> None:
        self.claims += 1
        setattr(self, result.disposition, getattr(self, result.disposition) + 1)
        for finding in result.findings:
            self.by_rule[finding.rule.id] += 1
            self.messages.setdefault(finding.rule.id, finding.rule.summary)

    def add_unattributed(self, item: Unattributed) -> None:
        self.claims += 1
        self.unattributed.append(item)

    @property
    def undelivered(self) -> int:
        """Claims that do not go out: rejected, or not attributed to either file."""
        return self.rejected + len(self.unattributed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claims": self.claims,
            "accepted": self.accepted,
            "corrected": self.corrected,
            "rejected": self.rejected,
            "unattributed": len(self.unattributed),
            "by_rule": dict(self.by_rule.most_common()),
        }

    def merge(self, other: Summary) -> None:
        """Add another input's counts (for the total of a run)."""
        for key in ("claims", "accepted", "corrected", "rejected"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.unattributed.extend(other.unattributed)
        self.by_rule.update(other.by_rule)
        self.messages.update(other.messages)
