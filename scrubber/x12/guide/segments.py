"""The segment and element half of the compiled implementation-guide validator (issue 11 §1).

`compile_segments` reads one of pyx12's map files (with the `dataele.xml` and `codes.xml` beside
it) into plain tables, one `SegmentRule` per segment node; `check_segment` checks one segment
against one rule and reports what pyx12 4.0.0's `apply_segment_errors` reports for that segment
at that node: the same error codes, element reference designators and order (the message text is
pyx12's too). Where pyx12 crashes, this module reports what the guide asks for instead; each such
difference is listed in the README ("Compiled guide: segments and elements") and in
`DIFFERENCES` below.

How pyx12 reports, and so how this module reports:
- Errors pyx12 ties to an element (IK4 codes 1, 4..10) are `ElementProblem("ele", code, refdes)`.
- Errors it ties to no element (too many elements, a composite missing, not used or with too many
  components, and every syntax rule) reach the error handler as segment error "8" ("segment has
  data element errors"): `ElementProblem("seg", "8", None)`.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from .seg_fast import clean_by_pattern
from .seg_rules import CompositeRule, ElementProblem, ElementRule, PerComponent, SegmentKey, SegmentRule, per_component
from .seg_types import control_character, is_date_type, is_valid_type

if TYPE_CHECKING:  # lxml is imported where a map is compiled (a cache miss), not by every run: 6-10 ms
    from lxml import etree

__all__ = [
    "DIFFERENCES", "CompositeRule", "ElementProblem", "ElementRule", "GuideCompileError", "SegmentKey",
    "SegmentRule", "check_segment", "compile_segments", "distinct_rules", "map_folder",
]

# Segment ids whose elements pyx12 never splits into components (the ISA carries the component
# separator itself as ISA16).
_UNSPLIT = "ISA"
# DTP02 names the format of DTP03 (pyx12's special case for DTP): these formats are checked.
_DTP_FORMATS = ("RD8", "D8", "D6", "DT", "TM")
# Data element 1250 (date/time format qualifier) names the format of a later 1251 element.
_FORMAT_QUALIFIER = "1250"
_FORMATTED_VALUE = "1251"
# Bump when the rules' shape or their pickled form changes: the cache keys on it.
COMPILER_VERSION = 1
_MEMO_LIMIT = 1024  # segments remembered per rule (and component): most segments of a file repeat exactly
_BUILD_AFTER = 8  # segments of one rule and length checked exactly before its expression is built

# Where this module reports something else than pyx12 4.0.0, by (kind of input, what pyx12 does).
# The differential tests read this table: a difference not listed here fails them.
DIFFERENCES: dict[str, str] = {
    "too-many-components": (
        "A composite with more components than the guide defines: pyx12 raises IndexError "
        "(_segment.py looks up children[count + 1]); we report one segment error 8 'Too many "
        "sub-elements in composite' and check the components the guide defines."
    ),
    "rd8-hyphens": (
        "A date range (RD8, DTP02=RD8) with more than one hyphen: pyx12 raises ValueError "
        "(validation.py unpacks split('-') into two); we report IK4 8, invalid date, as for any "
        "other malformed range."
    ),
}


class GuideCompileError(Exception):
    """The map cannot be read the way pyx12 reads it (pyx12 would fail on it too)."""


# ------------------------------------------------------------------------------------------
# Compiling a map


def map_folder() -> Path:
    """pyx12's map folder: its maps, data elements and external code sets are the guide we read."""
    return Path(str(files("pyx12") / "map"))


def _field(node: etree._Element, name: str) -> str | None:
    """pyx12 reads each property from an attribute, else from a child element of that name."""
    return node.get(name) or node.findtext(name)


def _data_elements(folder: Path) -> dict[str, tuple[str | None, int, int]]:
    from lxml import etree
    tree = etree.parse(str(folder / "dataele.xml"))
    return {
        e.get("ele_num"): (e.get("data_type"), int(e.get("min_len")), int(e.get("max_len")))
        for e in tree.iter("data_ele")
    }


def _external_codes(folder: Path) -> dict[str, frozenset[str | None]]:
    from lxml import etree
    tree = etree.parse(str(folder / "codes.xml"))
    return {
        c.findtext("id"): frozenset(code.text for code in c.iterfind("version/code"))
        for c in tree.iter("codeset")
    }


class _Compiler:
    def __init__(self, folder: Path) -> None:
        self.dataele = _data_elements(folder)
        self.external = _external_codes(folder)
        self.icvn = "00401"
        self.code_sets: dict[frozenset, frozenset] = {}  # one object per distinct list: smaller pickles

    def element(self, node: etree._Element, parent_usage: str | None) -> ElementRule:
        refdes = node.get("xid")
        data_ele = _field(node, "data_ele")
        if not data_ele or data_ele not in self.dataele:
            raise GuideCompileError(f"{refdes}: data element {data_ele!r} is not in dataele.xml")
        data_type, min_len, max_len = self.dataele[data_ele]
        usage = _field(node, "usage")
        seq = int(_field(node, "seq"))
        code_list: tuple[str | None, ...] = ()
        codes: frozenset | None = None
        valid = node.find("valid_codes")
        if valid is not None:
            code_list = tuple(c.text for c in valid.findall("code"))
            external = valid.get("external")
            merged = set(code_list)
            if external is not None:
                if external not in self.external:
                    raise GuideCompileError(f"{refdes}: external code set {external!r} is not in codes.xml")
                merged |= self.external[external]
            if code_list or external is not None:
                codes = self.code_sets.setdefault(frozenset(merged), frozenset(merged))
        pattern = node.findtext("regex")
        in_composite = parent_usage is not None
        return ElementRule(
            refdes=refdes, name=_field(node, "name") or "", usage=usage or "", seq=seq, data_ele=data_ele,
            data_type=data_type, min_len=min_len, max_len=max_len, codes=codes, code_list=code_list,
            regex=re.compile(pattern, re.S) if pattern else None,
            required=usage == "R" and (seq != 1 or not in_composite or parent_usage == "R"),
        )

    def composite(self, node: etree._Element) -> CompositeRule:
        usage = _field(node, "usage") or ""
        # pyx12 keeps a composite's components in document order and checks them by index.
        return CompositeRule(
            refdes=node.findtext("refdes") or node.get("xid"), name=_field(node, "name") or "", usage=usage,
            elements=tuple(self.element(e, usage) for e in node.findall("element")),
        )

    def segment(self, node: etree._Element, loop_path: str, node_name: str) -> SegmentRule:
        seg_id = node.get("xid")
        by_seq: dict[int, etree._Element] = {}
        for child in node.findall("element"):
            by_seq[int(_field(child, "seq"))] = child
        for child in node.findall("composite"):
            by_seq[int(_field(child, "seq"))] = child
        if sorted(by_seq) != list(range(1, len(by_seq) + 1)):
            # pyx12 finds a segment's elements by seq == index + 1 and raises on a gap.
            raise GuideCompileError(f"{loop_path} {seg_id}: element positions {sorted(by_seq)} have a gap")
        elements = tuple(
            self.element(by_seq[s], None) if by_seq[s].tag == "element" else self.composite(by_seq[s])
            for s in sorted(by_seq)
        )
        syntax = []
        for s in node.findall("syntax"):
            text = s.text
            if text is None or text[:1] not in "PRCLE" or not text:
                continue  # pyx12 ignores a syntax note it cannot read
            syntax.append((text[0], tuple(int(text[i * 2 + 1 : i * 2 + 3]) for i in range(len(text[1:]) // 2))))
        return SegmentRule(
            key=(loop_path, int(_field(node, "pos")), node_name), seg_id=seg_id, name=_field(node, "name") or "",
            elements=elements, syntax=tuple(syntax), icvn=self.icvn,
        )


def _map_icvn(root: etree._Element) -> str:
    """ISA12's first valid code in the map, as pyx12's map_if._get_icvn reads it; 00401 without."""
    for loop in root.findall("loop"):
        if (loop.get("xid") or "").lower() != "isa_loop":
            continue
        for seg in loop.findall("segment"):
            if (seg.get("xid") or "").lower() == "isa":
                for e in seg.findall("element"):
                    if int(_field(e, "seq")) == 12:
                        code = e.findtext("valid_codes/code")
                        return code or "00401"
    return "00401"


def _qualified_id(seg: etree._Element, compiler: _Compiler) -> str:
    """pyx12's name for a segment node that shares its position with another node: the id and the
    first code of its qualifier element (loop_if.__init__ and guess_unique_key_id_element)."""
    seg_id = seg.get("xid")
    children: dict[int, etree._Element] = {}
    for child in list(seg.findall("element")) + list(seg.findall("composite")):
        children[int(_field(child, "seq"))] = child
    ordered = [children[s] for s in sorted(children)]

    def codes_of(e: etree._Element | None, want_id: bool) -> list[str | None]:
        if e is None or e.tag != "element":
            return []
        if want_id and compiler.dataele.get(_field(e, "data_ele") or "", (None,))[0] != "ID":
            return []
        return [c.text for c in e.findall("valid_codes/code")]

    c0, c1, c2 = [*ordered, None, None, None][:3]
    for candidate in (
        codes_of(c0, True),
        codes_of(c1, True) if seg_id == "ENT" else [],
        codes_of(c0.find("element") if c0 is not None and c0.tag == "composite" else None, True),
        codes_of(c2, False) if seg_id == "HL" else [],
    ):
        if candidate:
            return f"{seg_id}[{candidate[0] or ''}]"
    return seg_id


def compile_segments(map_file: str, folder: Path | None = None) -> dict[SegmentKey, SegmentRule]:
    """Read one pyx12 map (a file name in pyx12's map folder, e.g. "837.5010.X222.A1.xml") into a
    rule per segment node, keyed by (loop path, position, segment id).

    Extension of the agreed key: a loop may hold several nodes of one segment id at one position
    (the 837P's 2010AA has three REF at 350). Each rule is therefore also keyed by pyx12's own name
    for the node, the id and its first qualifier code ("REF[EI]"), which is unique; the plain id
    key is kept only where it is unambiguous. `rule.key` is always the unique one. Pure and
    deterministic; the result pickles.
    """
    folder = folder or map_folder()
    from lxml import etree
    root = etree.parse(str(folder / map_file)).getroot()
    compiler = _Compiler(folder)
    compiler.icvn = _map_icvn(root)
    rules: dict[SegmentKey, SegmentRule] = {}
    seen: dict[SegmentKey, int] = {}

    def walk(node: etree._Element, path: str) -> None:
        positions: dict[int, int] = {}
        for child in list(node.findall("loop")) + list(node.findall("segment")):
            pos = int(_field(child, "pos"))
            positions[pos] = positions.get(pos, 0) + 1
        for loop in node.findall("loop"):
            walk(loop, ("" if path == "/" else path) + "/" + loop.get("xid"))
        for seg in node.findall("segment"):
            pos = int(_field(seg, "pos"))
            # pyx12 renames the nodes sharing a position inside a loop, never at the map's root.
            named = _qualified_id(seg, compiler) if positions[pos] > 1 and path != "/" else seg.get("xid")
            rule = compiler.segment(seg, path, named)
            rules[rule.key] = rule
            plain = (path, pos, rule.seg_id)
            seen[plain] = seen.get(plain, 0) + 1
            if seen[plain] == 1:
                rules.setdefault(plain, rule)
            elif rules.get(plain) is not None and rules[plain].key != plain:
                del rules[plain]  # ambiguous: only the qualified names find these

    walk(root, "/")
    return rules


def distinct_rules(rules: dict[SegmentKey, SegmentRule]) -> list[SegmentRule]:
    """Each segment node's rule once (the table keys some rules twice)."""
    return list({id(r): r for r in rules.values()}.values())


# ------------------------------------------------------------------------------------------
# Checking a segment


def check_segment(
    rule: SegmentRule, elements: list[str], component: str, repetition: str | None, remember: bool = True
) -> list[ElementProblem]:
    """What pyx12's apply_segment_errors reports for this segment at this rule's node, in order.

    `elements` is the segment split on the element separator (elements[0] is the segment id).
    `repetition` is accepted and not used: pyx12 4.0.0 does not split repeated elements, it reads
    the repetition separator as a character of the value (the 5010 extended set allows it); the
    only element of these maps that may repeat, DMG05, the 837 guides mark not used.
    `remember`: keep the result for these elements in the rule's memo (a caller with a memo of
    its own, such as the validator's, says False: no second copy of every segment).
    """
    tables = rule.by_component.get(component) or per_component(rule, component)
    if not remember:
        return [] if _clean(rule, tables, elements, component) else _check(rule, elements, component)
    key = tuple(elements)
    memo = tables.memo
    found = memo.get(key)
    if found is None:
        found = () if _clean(rule, tables, elements, component) else tuple(_check(rule, elements, component))
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = found
    return list(found) if found else []


def _clean(rule: SegmentRule, tables: PerComponent, elements: list[str], component: str) -> bool:
    """The fast path: True when the segment is certainly clean (seg_fast.py). Its expression is
    built for a rule and length once _BUILD_AFTER segments have taken the exact checks: building
    one takes about a millisecond (some 40 of them at the start of a file), as long as the exact
    checks of some 60 segments, and a file's envelope and header segments come a few times only."""
    given = len(elements) - 1
    if given not in tables.patterns:
        tried = tables.unbuilt.get(given, 0)
        if tried < _BUILD_AFTER:
            tables.unbuilt[given] = tried + 1
            return False
    separator = tables.separator
    text = separator.join(elements)
    # A value that holds the joining character is not clean: no expression can match it.
    return text.count(separator) == given and clean_by_pattern(rule, tables, component, given, text)


def _check(rule: SegmentRule, elements: list[str], component: str) -> list[ElementProblem]:
    out: list[ElementProblem] = []
    seg_id = elements[0]
    values = elements[1:]
    given = len(values)
    defs = rule.elements
    count = len(defs)
    split = seg_id != _UNSPLIT
    icvn = rule.icvn
    if given > count:
        out.append(ElementProblem(
            "seg", "8", None,
            f'Too many elements in segment "{rule.name}" ({seg_id}). Has {given}, should have {count}',
            _present_value(values[count], component, split),
        ))
    type_list: list[str | None] = []
    dtp_format: list[str | None] = []
    for i in range(min(given, count)):
        d = defs[i]
        value = values[i]
        if type(d) is CompositeRule:
            parts = value.split(component) if split else [value]
            _check_composite(d, parts, value, component, out, icvn)
            continue
        if i == 1 and seg_id == "DTP":
            shown = _present_value(value, component, split)
            if shown in _DTP_FORMATS:
                dtp_format = [shown]
        if d.data_ele == _FORMAT_QUALIFIER:
            type_list.extend(d.code_list)
        if split and component in value:
            out.append(ElementProblem(
                "ele", "6", d.refdes, f'Data element "{d.name}" ({d.refdes}) is an invalid composite',
                value.rstrip(component),
            ))
            continue
        if i == 2 and seg_id == "DTP":
            _check_element(d, value, out, icvn, dtp_format)
        elif d.data_ele == _FORMATTED_VALUE:
            _check_element(d, value, out, icvn, type_list)
        else:
            _check_element(d, value, out, icvn, None)
    for i in range(min(given, count), count):
        d = defs[i]
        if type(d) is CompositeRule:
            if d.usage == "R":
                out.append(_composite_missing(d))
        elif d.required:
            out.append(_element_missing(d))
    for kind, positions in rule.syntax:
        message = _syntax_problem(kind, positions, values, component, split, seg_id)
        if message is not None:
            out.append(ElementProblem("seg", "8", None, message, None))
    return out


def _present_value(value: str, component: str, split: bool) -> str:
    """The value pyx12 shows for a whole element: trailing empty components dropped."""
    return value.rstrip(component) if split else value


def _composite_missing(d: CompositeRule) -> ElementProblem:
    return ElementProblem("seg", "8", None, f'Mandatory composite "{d.name}" ({d.refdes}) is missing', None)


def _element_missing(d: ElementRule) -> ElementProblem:
    return ElementProblem("ele", "1", d.refdes, f'Mandatory data element "{d.name}" ({d.refdes}) is missing', None)


def _check_composite(
    d: CompositeRule, parts: list[str], value: str, component: str, out: list[ElementProblem], icvn: str
) -> None:
    subs = d.elements
    if len(parts) > len(subs) and d.usage != "N":
        # pyx12 raises IndexError here (DIFFERENCES["too-many-components"]).
        out.append(ElementProblem(
            "seg", "8", None, f'Too many sub-elements in composite "{d.name}" ({d.refdes})',
            value.rstrip(component),
        ))
    empty = not any(parts)
    if empty and d.usage in ("N", "S"):
        return
    if d.usage == "R" and empty:
        out.append(_composite_missing(d))
        return
    if d.usage == "N":
        out.append(ElementProblem("seg", "8", None, f'Composite "{d.name}" ({d.refdes}) is marked as Not Used', None))
        return
    for j in range(min(len(parts), len(subs))):
        _check_element(subs[j], parts[j], out, icvn, None)
    out.extend(_element_missing(sub) for sub in subs[len(parts):] if sub.required)


def _check_element(
    d: ElementRule, value: str, out: list[ElementProblem], icvn: str, type_list: list[str | None] | None
) -> None:
    """pyx12's element_if.is_valid_errors for a simple (non-composite) value."""
    refdes = d.refdes
    if value == "":
        if d.required:
            out.append(_element_missing(d))
        return
    if d.usage == "N":
        out.append(_ele("10", d, f'Data element "{d.name}" ({refdes}) is marked as Not Used', None))
        return
    data_type = d.data_type
    # Numbers are measured without their sign and decimal point.
    if data_type is not None and (data_type == "R" or data_type[0] == "N"):
        length = len(value.replace("-", "").replace(".", ""))
    else:
        length = len(value)
    if length < d.min_len:
        out.append(_ele("4", d, f'Data element "{d.name}" ({refdes}) is too short: '
                                f'len("{value}") = {length} < {d.min_len} (min_len)', value))
    if length > d.max_len:
        out.append(_ele("5", d, f'Data element "{d.name}" ({refdes}) is too long: '
                                f'len("{value}") = {length} > {d.max_len} (max_len)', value))
    control = control_character(value)
    if control is not None:
        out.append(_ele("6", d, f'Data element "{d.name}" ({refdes}), contains an invalid control '
                                f"character({control})", control))
        return  # pyx12: a control character trumps the later checks
    if data_type in ("AN", "ID") and value[-1] == " " and len(value.rstrip()) >= d.min_len:
        out.append(_ele("6", d, f'Data element "{d.name}" ({refdes}) has unnecessary trailing spaces. ({value})',
                        value))
    if d.codes is not None and value not in d.codes:
        out.append(_ele("7", d, f"({value}) is not a valid code for {d.name} ({refdes})", value))
    if not is_valid_type(value, data_type, icvn):
        if is_date_type(data_type):
            out.append(_invalid_date(d, value))
        elif data_type == "TM":
            out.append(_invalid_time(d, value))
        else:
            out.append(_ele("6", d, f'Data element "{d.name}" ({refdes}) is type {data_type}, '
                                    f"contains an invalid character({value})", value))
    # pyx12 checks a formatted value against each format its qualifier allows, with the default
    # (4010) character set.
    if type_list and not any(is_valid_type(value, t, "00401") for t in type_list if t is not None):
        if "TM" in type_list:
            out.append(_invalid_time(d, value))
        elif any(is_date_type(t) for t in type_list):
            out.append(_invalid_date(d, value))
    if d.regex is not None and d.regex.search(value) is None:
        out.append(_ele("7", d, f'Data element "{d.name}" with a value of ({value}) failed to match '
                                f'the regular expression "{d.regex.pattern}"', value))


def _ele(code: str, d: ElementRule, message: str, value: str | None) -> ElementProblem:
    return ElementProblem("ele", code, d.refdes, message, value)


def _invalid_date(d: ElementRule, value: str) -> ElementProblem:
    return _ele("8", d, f'Data element "{d.name}" ({d.refdes}) contains an invalid date ({value})', value)


def _invalid_time(d: ElementRule, value: str) -> ElementProblem:
    return _ele("9", d, f'Data element "{d.name}" ({d.refdes}) contains an invalid time ({value})', value)


def _syntax_name(kind: str, positions: tuple[int, ...]) -> str:
    return kind + "".join(f"{p:02d}" for p in positions)


def _element_names(seg_id: str, positions: tuple[int, ...]) -> str:
    names = [f"{seg_id}{p:02d}" for p in positions]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _syntax_problem(
    kind: str, positions: tuple[int, ...], values: list[str], component: str, split: bool, seg_id: str
) -> str | None:
    """pyx12's is_syntax_valid: the message when the rule is broken, else None."""
    if len(positions) < 2:
        return f"Syntax string must have at least two comparators {_syntax_name(kind, positions)}"
    given = len(values)

    def present(p: int) -> bool:
        return p <= given and _present_value(values[p - 1], component, split) != ""

    name = _syntax_name(kind, positions)
    if kind in ("P", "R", "E"):
        count = sum(1 for p in positions if present(p))
        if kind == "P" and count not in (0, len(positions)):
            return (f"Syntax Error ({name}): If any of {_element_names(seg_id, positions)} is present, "
                    "then all are required")
        if kind == "R" and count == 0:
            return f"Syntax Error ({name}): At least one element is required"
        if kind == "E" and count > 1:
            return f"Syntax Error ({name}): At most one of {_element_names(seg_id, positions)} may be present"
        return None
    first, rest = positions[0], positions[1:]
    if not present(first):
        return None
    count = sum(1 for p in rest if present(p))
    if kind == "C" and count != len(rest):
        verb = "are" if len(rest) > 1 else "is"
        return (f"Syntax Error ({name}): If {seg_id}{first:02d} is present, then "
                f"{_element_names(seg_id, rest)} {verb} required")
    if kind == "L" and count == 0:
        return (f"Syntax Error ({name}): If {seg_id}{first:02d} is present, then at least one of "
                f"{_element_names(seg_id, rest)} is required")
    return None
