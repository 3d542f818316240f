"""The rule catalog: id, category, severity, fix kind and documentation of every rule, as data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import RuleDataError
from .schema import check_table, read_toml

# Part of the report's contract: a new category is a new report version.
CATEGORIES = ("syntax", "balancing", "code_set", "units", "modifier", "diagnosis", "ndc", "authorization")
SEVERITIES = ("error", "warning")
FIX_KINDS = ("none", "safe", "unsafe")

_ID = re.compile(r"^[A-Z][0-9]{3}$")

_SPEC = {
    "name": ("str", True),
    "category": ("str", True),
    "severity": ("str", True),
    "snip": ("int", True),
    "fix": ("str", True),
    "fix_why": ("str", False),
    "summary": ("str", True),
    "message": ("str", True),
    "why": ("str", True),
    "location": ("str", True),
    "source": ("str", True),
    "example": ("list[str]", True),
    "status_277ca": ("list[str]", True),
    "status_277ca_entity": ("str", False),
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    category: str
    severity: str
    snip: int
    fix: str
    summary: str
    message: str
    why: str
    location: str
    source: str
    example: tuple[str, ...]
    # 277CA claim status codes (code list 508) when this rule rejects a claim, and the entity
    # code some of them require (PR, or NM101: the entity of the NM1 the finding points at).
    status_277ca: tuple[str, ...] = ()
    status_277ca_entity: str | None = None
    fix_why: str | None = None  # why the fix has its class

    def format(self, **values: object) -> str:
        return self.message.format(**values)


def load_catalog(path: Path) -> dict[str, Rule]:
    data = read_toml(path)
    rules: dict[str, Rule] = {}
    for rule_id, table in data.items():
        if not _ID.match(rule_id):
            raise RuleDataError(str(path), rule_id, "a rule id: one capital letter and three digits (e.g. U003)")
        check_table(path, rule_id, table, _SPEC)
        for key, allowed in (("category", CATEGORIES), ("severity", SEVERITIES), ("fix", FIX_KINDS)):
            if table[key] not in allowed:
                raise RuleDataError(str(path), f"{rule_id}.{key}", f"one of {', '.join(allowed)}")
        if (table["fix"] != "none") != ("fix_why" in table):
            expected = "why the fix is safe or unsafe (and no fix_why when fix is none)"
            raise RuleDataError(str(path), f"{rule_id}.fix_why", expected)
        if not 1 <= table["snip"] <= 7:
            raise RuleDataError(str(path), f"{rule_id}.snip", "a WEDI SNIP level from 1 to 7")
        if not table["status_277ca"] or not all(c.isalnum() and len(c) <= 5 for c in table["status_277ca"]):
            raise RuleDataError(str(path), f"{rule_id}.status_277ca", "one or two claim status codes (list 508)")
        rules[rule_id] = Rule(id=rule_id, **{**table, "example": tuple(table["example"]),
                                             "status_277ca": tuple(table["status_277ca"])})
    return rules
