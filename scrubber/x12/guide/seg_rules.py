"""The compiled tables of the segment checks: plain frozen dataclasses that pickle (issue 11 §1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SegmentKey = tuple[str, int, str]
#   (path of the loop that holds the segment node, as pyx12's loop node.get_path() gives it,
#    the node's position in that loop, the segment id, or pyx12's qualified name for a node
#    that shares its position: "REF[EI]")


@dataclass(frozen=True, slots=True)
class ElementProblem:
    kind: str  # "seg" (what pyx12 sends to errh.seg_error) or "ele" (errh.ele_error)
    code: str  # pyx12's code: "8" for seg; "1".."10" for ele
    refdes: str | None  # for "ele": the element's refdes as pyx12 reports it ("CLM05-01", "NM109")
    message: str
    value: str | None  # the bad value, where pyx12 passes one


@dataclass(frozen=True, slots=True, eq=False)
class ElementRule:
    """One simple element, of a segment or of a composite."""

    refdes: str
    name: str
    usage: str  # R, S or N
    seq: int
    data_ele: str
    data_type: str | None
    min_len: int
    max_len: int
    codes: frozenset[str | None] | None  # valid codes (the map's list and its external set), None = any
    code_list: tuple[str | None, ...]  # the map's own list, in order (1250 elements pass it on)
    regex: re.Pattern[str] | None
    required: bool  # empty gives IK4 1 (pyx12: R, unless the first component of an optional composite)

    def __reduce__(self) -> tuple:
        # Unpickled by __init__ from the fields in order: the __setstate__ dataclasses gives a
        # slotted class looks its fields up again for each object, and a fresh process loads
        # some 3,000 rules (2.5 times slower).
        return (ElementRule, (self.refdes, self.name, self.usage, self.seq, self.data_ele, self.data_type,
                              self.min_len, self.max_len, self.codes, self.code_list, self.regex, self.required))


@dataclass(frozen=True, slots=True, eq=False)
class CompositeRule:
    refdes: str
    name: str
    usage: str
    elements: tuple[ElementRule, ...]

    def __reduce__(self) -> tuple:
        return (CompositeRule, (self.refdes, self.name, self.usage, self.elements))  # (see ElementRule's)


class PerComponent:
    """What a rule learns at run time for one component separator: the patterns of its clean
    segments (by number of elements) and the segments it has already checked. Not pickled."""

    __slots__ = ("memo", "patterns", "separator", "unbuilt")

    def __init__(self, component: str) -> None:
        # The elements are joined back with a character no clean value holds (a control
        # character), and never the component separator.
        self.separator = "\x1d" if component != "\x1d" else "\x1e"
        self.patterns: dict[int, Any] = {}
        self.memo: dict[tuple[str, ...], tuple[ElementProblem, ...]] = {}
        # segments checked without an expression yet, by number of elements (see segments._clean)
        self.unbuilt: dict[int, int] = {}


@dataclass(frozen=True, slots=True, eq=False)
class SegmentRule:
    """One segment node of a map. Compared by identity (the tables are its own)."""

    key: SegmentKey  # unique in its map: the qualified name where a position is shared ("REF[EI]")
    seg_id: str
    name: str
    elements: tuple[ElementRule | CompositeRule, ...]  # by position: elements[0] is XX01
    syntax: tuple[tuple[str, tuple[int, ...]], ...]  # (P/R/C/L/E, element positions)
    icvn: str  # the interchange version the map names in ISA12: picks the character set
    by_component: dict[str, PerComponent] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> tuple:  # pragma: no cover - exercised through pickle
        return (self.key, self.seg_id, self.name, self.elements, self.syntax, self.icvn)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(("key", "seg_id", "name", "elements", "syntax", "icvn"), state, strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "by_component", {})


def per_component(rule: SegmentRule, component: str) -> PerComponent:
    found = rule.by_component.get(component)
    if found is None:
        found = rule.by_component[component] = PerComponent(component)
    return found
