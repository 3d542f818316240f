"""Findings and fixes: what a rule says about a claim, where, and how to mend it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from ..model.claim import Claim, Field, ServiceLine
from ..x12.tokenizer import Delimiters, Segment
from .catalog import Rule
from .history import RunHistory
from .lines import DrugLine, drug_lines_of
from .reference import PayerPolicy
from .ruleset import RuleSet


@dataclass(frozen=True, slots=True)
class Edit:
    """Set one element (or one component of it) of the segment at `position` in the transaction."""

    position: int
    element: int
    component: int | None
    value: str


@dataclass(frozen=True, slots=True)
class Fix:
    edits: tuple[Edit, ...]
    after: str  # the value the fix writes, as a user would read it
    # "safe" or "unsafe": always the rule's catalog class, filled in by Findings.add; a check
    # never states it, so the code cannot disagree with the catalog.
    safety: str = ""


class FixClassError(Exception):
    """A check offered a fix for a rule whose catalog entry says it has none: a programming
    error, caught by the tests, never a finding."""


@dataclass(slots=True)
class Finding:
    rule: Rule
    severity: str  # the rule's severity for this claim (a payer or a site may change it)
    message: str
    line: int | None  # LX01 of the service line, or None for the claim
    segment: int | None  # 1-based position of the segment in the file
    seg_id: str | None
    element: str | None  # reference designator, e.g. SV104
    value: str | None  # the value found
    fix: Fix | None = None
    fixed: bool = False

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def key(self) -> tuple[str, int | None, str | None, int | None]:
        return (self.rule.id, self.segment, self.element, self.line)


@dataclass
class ClaimContext:
    """What the checks of a claim read besides the claim: the rules, the payer's policy, what
    the run has seen so far, and today's date."""

    rules: RuleSet
    policy: PayerPolicy
    history: RunHistory
    today: dt.date
    delimiters: Delimiters
    base_index: int  # file index of the transaction's ST, to turn a segment into a position


@dataclass
class Findings:
    """What the checks of one claim add to; formats each message from the catalog, and leaves
    out what a site or the payer turned off."""

    context: ClaimContext
    claim: Claim
    items: list[Finding] = field(default_factory=list)
    # The claim's profiled lines once found (drug_lines), or as a check of the same claim found
    # them (engine: the checks across claims reuse those of its last local check).
    lines_found: list[DrugLine] | None = field(default=None, repr=False)

    @property
    def rules(self) -> RuleSet:
        return self.context.rules

    @property
    def drug_lines(self) -> list[DrugLine]:
        """The claim's lines with a drug profile (lines.profiled_lines), found once for these
        findings: a dozen checks ask."""
        if self.lines_found is None:
            self.lines_found = drug_lines_of(self.claim, self.rules)
        return self.lines_found

    @property
    def policy(self) -> PayerPolicy:
        return self.context.policy

    @property
    def delimiters(self) -> Delimiters:
        return self.context.delimiters

    def add(
        self,
        rule_id: str,
        at: Field | None,
        line: ServiceLine | None = None,
        fix: Fix | None = None,
        segment: Segment | None = None,
        seg_id: str | None = None,
        **values: object,
    ) -> None:
        rule = self.rules.rule(rule_id)
        enabled, severity = self.rules.rule_state(rule_id, self.context.policy)
        if not enabled:
            return
        if fix is not None:
            if rule.fix == "none":
                raise FixClassError(f"{rule_id} offers a fix, but the catalog says fix = \"none\"")
            fix = replace(fix, safety=rule.fix)
        if at is not None:
            segment, seg_id = at.segment, at.seg_id
        self.items.append(
            Finding(
                rule=rule,
                severity=severity,
                message=rule.format(**values),
                line=line.line_number if line is not None else None,
                segment=segment.index if segment is not None else None,
                seg_id=seg_id,
                element=at.ref if at is not None else None,
                value=at.value if at is not None else None,
                fix=fix,
            )
        )

    def position(self, segment: Segment) -> int:
        return segment.index - self.context.base_index

    def set_value(self, at: Field, value: str, shown: str | None = None) -> Fix:
        """A fix that writes `value` where `at` came from (its class is the rule's, from the catalog)."""
        edit = Edit(self.position(at.segment), at.element, at.component, value)
        return Fix((edit,), shown if shown is not None else value)

    def set_element(self, segment: Segment, element: int, value: str, shown: str) -> Fix:
        """A fix that rewrites a whole element (a composite, say)."""
        return Fix((Edit(self.position(segment), element, None, value),), shown)
