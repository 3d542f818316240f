"""Findings and fixes: what a rule says about a claim, where, and how to mend it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.claim import Claim, Field, ServiceLine
from ..x12.tokenizer import Delimiters, Segment
from .catalog import Rule
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
    safety: str  # "safe" or "unsafe"
    edits: tuple[Edit, ...]
    after: str  # the value the fix writes, as a user would read it


@dataclass(slots=True)
class Finding:
    rule: Rule
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
        return self.rule.severity == "error"

    @property
    def key(self) -> tuple[str, int | None, str | None, int | None]:
        return (self.rule.id, self.segment, self.element, self.line)


@dataclass
class Findings:
    """What the checks of one claim add to; formats each message from the catalog."""

    rules: RuleSet
    claim: Claim
    base_index: int  # file index of the transaction's ST, to turn a segment into a position
    delimiters: Delimiters
    items: list[Finding] = field(default_factory=list)

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
        if at is not None:
            segment, seg_id = at.segment, at.seg_id
        self.items.append(
            Finding(
                rule=rule,
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
        return segment.index - self.base_index

    def set_value(self, at: Field, value: str, safety: str = "safe", shown: str | None = None) -> Fix:
        """A fix that writes `value` where `at` came from."""
        edit = Edit(self.position(at.segment), at.element, at.component, value)
        return Fix(safety, (edit,), shown if shown is not None else value)

    def set_element(self, segment: Segment, element: int, value: str, safety: str, shown: str) -> Fix:
        """A fix that rewrites a whole element (a composite, say)."""
        return Fix(safety, (Edit(self.position(segment), element, None, value),), shown)
