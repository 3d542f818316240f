"""The fast path of the segment checks: one regular expression per (rule, number of elements,
component separator) that matches only segments pyx12 finds nothing wrong with.

Most segments of a file are clean. For those, one `fullmatch` over the segment (its elements
joined back with a control character) and a few checks the expression cannot make (long code
lists, calendar dates, the format a qualifier names) decide it; the syntax rules (paired,
required, conditional, list, exclusion) are look-aheads at the start of the expression. The expression is built to be
stricter than pyx12, never looser: anything it does not match goes to the exact checks in
segments.py, which say what is wrong (or that nothing is, as for a value with trailing spaces
shorter than the element's minimum). The differential tests hold both paths to pyx12.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .seg_rules import CompositeRule, ElementRule, PerComponent, SegmentRule
from .seg_types import bad_character_pattern, is_valid_type

# A code list longer than this is checked by set membership after the match, not in the expression.
_INLINE_CODES = 64
_DTP_FORMATS = ("RD8", "D8", "D6", "DT", "TM")
_NEVER = object()  # a segment of this length is never clean (too many elements, a required one missing)

Check = Callable[[re.Match[str]], bool]


class _Builder:
    """Builds one expression; `checks` are run on its match, in order."""

    def __init__(self, rule: SegmentRule, component: str, separator: str) -> None:
        self.rule = rule
        self.split = rule.seg_id != "ISA"
        self.component = component
        self.separator = separator
        self.groups = 0
        self.checks: list[Check] = []
        self.dtp_qualifier = ""
        self.text_class, self.text_class_no_space = _text_classes(rule.icvn, component if self.split else "")
        ends = re.escape(separator) + (re.escape(component) if self.split else "")
        self.value_end = f"(?:[{ends}]|\\Z)"

    def group(self, pattern: str) -> tuple[str, str]:
        """A named group (named, because groups nest and their numbers would follow the nesting)."""
        self.groups += 1
        name = f"g{self.groups}"
        return f"(?P<{name}>{pattern})", name

    def value(self, d: ElementRule) -> str | None:
        """Clean non-empty values of one simple element, or None when the expression cannot say."""
        pattern = self._typed_value(d)
        if pattern is None or d.regex is None:
            return pattern
        # The map's own expression (searched, as pyx12 does) is checked on the match.
        pattern, name = self.group(pattern)
        self.checks.append(_searched(name, d.regex))
        return pattern

    def _typed_value(self, d: ElementRule) -> str | None:
        if d.usage == "N" or d.min_len < 1:
            return None
        data_type = d.data_type or ""
        lo, hi = d.min_len, d.max_len
        if data_type in ("AN", "ID"):
            if lo == hi:
                # Fixed length (the ISA's fields): a trailing space leaves the value shorter than
                # the minimum, which pyx12 does not count as an unnecessary trailing space.
                base = f"{self.text_class}{{{lo}}}"
            else:
                # A trailing space is an error unless the value is short: left to the exact checks.
                base = f"{self.text_class}{{{lo - 1},{hi - 1}}}{self.text_class_no_space}"
        elif data_type[:1] == "N":
            base = f"-?[0-9]{{{lo},{hi}}}"
        elif data_type == "R":
            # Only the digits count toward the length: the look-ahead counts them to the value's end.
            base = f"-?(?=(?:\\.?[0-9]){{{lo},{hi}}}{self.value_end})(?:[0-9]+(?:\\.[0-9]+)?|\\.[0-9]+)"
        elif data_type in ("DT", "D8", "D6", "TM"):
            pattern, index = self.group(f"[0-9]{{{lo},{hi}}}")
            self.checks.append(_valid_type(index, data_type, self.rule.icvn))
            base = None
        else:
            return None
        if base is None:
            if d.codes is not None:
                self.checks.append(_member(index, d.codes))
            return pattern
        if d.codes is None:
            return base
        inline = sorted((c for c in d.codes if c and re.fullmatch(base, c)), key=lambda c: (-len(c), c))
        if len(d.codes) <= _INLINE_CODES:
            return "|".join(re.escape(c) for c in inline) or None
        pattern, index = self.group(base)
        self.checks.append(_member(index, d.codes))
        return pattern

    def element(self, d: ElementRule, empty_allowed: bool) -> str | None:
        value = self.value(d)
        if value is None:
            return "" if empty_allowed else None
        return f"(?:{value})?" if empty_allowed else f"(?:{value})"

    def composite(self, d: CompositeRule) -> str | None:
        if d.usage == "N":
            return ""
        c = re.escape(self.component)
        # Built from the last component back: components after the last given one may be left
        # out only when none of them is required.
        tail = ""
        for k in range(len(d.elements) - 1, -1, -1):
            sub = d.elements[k]
            pattern = self.element(sub, not sub.required)
            if pattern is None:
                return None
            piece = pattern + tail
            if k == 0:
                tail = piece
            else:
                needed = any(s.required for s in d.elements[k:])
                tail = f"{c}{piece}" if needed else f"(?:{c}{piece})?"
        # Not made only of component separators: an empty composite is missing (R) or left to the
        # exact checks (S).
        present = f"(?!{c}*(?:{re.escape(self.separator)}|\\Z))" + tail
        return present if d.usage == "R" else f"(?:{present})?"

    def segment(self, given: int) -> re.Pattern[str] | object | None:
        defs = self.rule.elements
        if given > len(defs):
            return _NEVER
        for d in defs[given:]:
            if (d.usage == "R") if type(d) is CompositeRule else d.required:
                return _NEVER
        syntax = self.syntax(given)
        if syntax is None:
            return _NEVER
        parts = [syntax + re.escape(self.rule.seg_id)]
        formats: list[str | None] = []
        for i, d in enumerate(defs[:given]):
            if type(d) is CompositeRule:
                pattern = self.composite(d) if self.split else None
            else:
                if self.rule.seg_id == "DTP" and i in (1, 2):
                    pattern = self._dtp(d, i)
                elif d.data_ele == "1251" and formats:
                    pattern = self._formatted(d, tuple(formats))
                else:
                    pattern = self.element(d, not d.required)
                if d.data_ele == "1250":
                    formats.extend(d.code_list)
            if pattern is None:
                return None
            parts.append(pattern)
        return re.compile(re.escape(self.separator).join(parts), re.S)

    def syntax(self, given: int) -> str | None:
        """The syntax rules as look-aheads from the start of the segment; None when a segment of
        this length never meets them. An element past the last given one is absent."""
        sep = re.escape(self.separator)
        comp = re.escape(self.component) if self.split else ""

        def present(p: int) -> str:
            # Element p holds something other than component separators.
            data = f"[{comp}]*[^{sep}{comp}]" if comp else f"[^{sep}]"
            return f"(?=(?:[^{sep}]*{sep}){{{p}}}{data})"

        def absent(p: int) -> str:
            return "(?!" + present(p)[3:]

        out: list[str] = []
        for kind, positions in self.rule.syntax:
            if len(positions) < 2:
                return None
            given_ones = [p for p in positions if p <= given]
            if kind == "P":
                none = "".join(map(absent, given_ones))
                if len(given_ones) < len(positions):
                    out.append(none)
                elif given_ones:
                    out.append(f"(?:{''.join(map(present, given_ones))}|{none})")
            elif kind == "R":
                if not given_ones:
                    return None
                out.append("(?:" + "|".join(map(present, given_ones)) + ")")
            elif kind == "E":
                out.extend(f"(?!{present(a)}{present(b)})" for i, a in enumerate(given_ones)
                           for b in given_ones[i + 1:])
            elif positions[0] <= given:  # C and L: only when the first is given
                first, rest = positions[0], positions[1:]
                rest_given = [p for p in rest if p <= given]
                if kind == "C" and len(rest_given) == len(rest):
                    out.append(f"(?:{absent(first)}|{''.join(map(present, rest))})")
                elif kind == "L" and rest_given:
                    out.append("(?:" + "|".join([absent(first), *map(present, rest_given)]) + ")")
                else:
                    out.append(absent(first))
        return "".join(out)

    def _dtp(self, d: ElementRule, i: int) -> str | None:
        """DTP02 names the format of DTP03 (pyx12 checks DTP03 against it): both are captured."""
        pattern = self.element(d, not d.required)
        if pattern is None:
            return None
        pattern, name = self.group(pattern)
        if i == 2:
            self.checks.append(_dtp_format(self.dtp_qualifier, name))
        else:
            self.dtp_qualifier = name
        return pattern

    def _formatted(self, d: ElementRule, formats: tuple[str | None, ...]) -> str | None:
        pattern = self.element(d, not d.required)
        if pattern is None:
            return None
        pattern, name = self.group(pattern)
        self.checks.append(_formats(name, formats))
        return pattern


_TEXT_CLASSES: dict[tuple[str, str], tuple[str, str]] = {}


def _text_classes(icvn: str, component: str) -> tuple[str, str]:
    """The classes of a text value's characters, with and without the space, for a character
    set and a component separator ("" for the ISA, whose elements are not split). Built once
    per pair for the process, not once per expression (a few pairs per file at most)."""
    classes = _TEXT_CLASSES.get((icvn, component))
    if classes is None:
        bad = bad_character_pattern(icvn)
        chars = {chr(c) for c in range(128) if not bad.match(chr(c))}
        # Inside a split element the component separator is never data (pyx12 splits on it).
        chars.discard(component)
        classes = _TEXT_CLASSES[(icvn, component)] = (_char_class(chars), _char_class(chars - {" "}))
    return classes


def _char_class(chars: set[str]) -> str:
    """A character class of `chars`, written as ranges: the class stands in the expression once
    per element, and the regex parser reads a range in one step where it reads ninety escaped
    characters one by one (the expressions are compiled in each process: about half their cost)."""
    codes = sorted(map(ord, chars))
    out: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        first, last = re.escape(chr(codes[i])), re.escape(chr(codes[j]))
        out.append(first if i == j else f"{first}{last}" if j == i + 1 else f"{first}-{last}")
        i = j + 1
    return "[" + "".join(out) + "]"


def _valid_type(index: str, data_type: str, icvn: str) -> Check:
    def check(m: re.Match[str]) -> bool:
        v = m.group(index)
        return v is None or is_valid_type(v, data_type, icvn)
    return check


def _searched(index: str, regex: re.Pattern[str]) -> Check:
    def check(m: re.Match[str]) -> bool:
        v = m.group(index)
        return not v or regex.search(v) is not None
    return check


def _member(index: str, codes: frozenset) -> Check:
    def check(m: re.Match[str]) -> bool:
        v = m.group(index)
        return v is None or v in codes
    return check


def _dtp_format(qualifier: str, index: str) -> Check:
    def check(m: re.Match[str]) -> bool:
        v, f = m.group(index), m.group(qualifier)
        return not v or f not in _DTP_FORMATS or is_valid_type(v, f, "00401")
    return check


def _formats(index: str, formats: tuple[str | None, ...]) -> Check:
    def check(m: re.Match[str]) -> bool:
        v = m.group(index)
        return not v or any(is_valid_type(v, f, "00401") for f in formats if f is not None)
    return check


def _pattern(rule: SegmentRule, tables: PerComponent, component: str, given: int) -> tuple[Any, tuple[Check, ...]]:
    builder = _Builder(rule, component, tables.separator)
    pattern = builder.segment(given)
    entry = (pattern, tuple(builder.checks)) if isinstance(pattern, re.Pattern) else (None, ())
    tables.patterns[given] = entry
    return entry


def clean_by_pattern(rule: SegmentRule, tables: PerComponent, component: str, given: int, text: str) -> bool:
    """True when the segment (`given` elements after its id, joined with the tables' separator)
    is certainly clean; False when the exact checks must look."""
    pattern, checks = tables.patterns.get(given) or _pattern(rule, tables, component, given)
    if pattern is None:
        return False
    m = pattern.fullmatch(text)
    if m is None:
        return False
    for check in checks:  # noqa: SIM110 (a loop: no generator made for each segment)
        if not check(m):
            return False
    return True
