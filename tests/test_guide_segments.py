"""The compiled segment/element checks against pyx12 4.0.0's own (issue 11 §1).

Differential: every segment pyx12's walker places at a segment node, in every file of the public
corpus, edi_samples/ and the fuzz seeds, and thousands of seeded element-level mutations of those
segments, must draw from `check_segment` exactly what pyx12's `apply_segment_errors` reports
(kind, code, element, value and message, in order), or a difference listed in
`segments.DIFFERENCES` (where pyx12 crashes).
"""

from __future__ import annotations

import functools
import pickle
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fuzz.seeds import seed_files
from pyx12.map_if import load_map_file
from pyx12.map_if._composite import composite_if
from pyx12.map_if._segment import apply_segment_errors
from pyx12.params import params
from pyx12.segment import Composite, Segment

import scrubber.x12.ig as ig
from scrubber.errors import InputError
from scrubber.x12.envelope import EnvelopeReader
from scrubber.x12.guide.seg_fast import clean_by_pattern
from scrubber.x12.guide.seg_rules import per_component
from scrubber.x12.guide.segments import (
    DIFFERENCES,
    CompositeRule,
    ElementProblem,
    ElementRule,
    GuideCompileError,
    SegmentRule,
    check_segment,
    compile_segments,
    distinct_rules,
    map_folder,
)
from scrubber.x12.tokenizer import SegmentReader

MAPS = ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml", "x12.control.00501.xml")
MUTATIONS = 6000
# Control characters pyx12 names, and some it does not.
CONTROL = "\x07\x09\x0a\x0b\x0c\x0d\x1c\x1d\x1f\x01\x02\x11\x17\x00\x7f\x08"


# ------------------------------------------------------------------------------------------
# pyx12's side


class _Recorder:
    """An error handler that keeps what apply_segment_errors reports, as check_segment does."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str | None, str | None, str]] = []

    def add_ele(self, _node: Any) -> None:
        pass

    def seg_error(self, code: str, message: str, value: Any = None, _line: Any = None) -> None:
        self.items.append(("seg", code, None, value, message))

    def ele_error(self, code: str, message: str, value: Any, refdes: str | None = None) -> None:
        self.items.append(("ele", code, refdes, value, message))


def pyx12_report(node: Any, pseg: Segment) -> list[tuple] | str:
    """What pyx12 reports, or the name of the exception it raises."""
    rec = _Recorder()
    try:
        apply_segment_errors(node, pseg, rec)
    except Exception as exc:  # pyx12's crashes are what DIFFERENCES lists
        return type(exc).__name__
    return rec.items


def ours(rule: SegmentRule, elements: list[str], component: str) -> list[tuple]:
    return [(p.kind, p.code, p.refdes, p.value, p.message) for p in check_segment(rule, elements, component, "^")]


def pyx12_segment(elements: list[str], element: str, component: str) -> Segment:
    """A pyx12 segment from already split elements, as its reader would build it."""
    pseg = Segment(None, "~", element, component)
    pseg.seg_id = elements[0]
    sub = element if elements[0] == "ISA" else component
    pseg.elements = [Composite(v, sub) for v in elements[1:]]
    return pseg


def elements_of(pseg: Segment) -> list[str]:
    return [pseg.seg_id] + [c.subele_term.join(e.value for e in c.elements) for c in pseg.elements]


@functools.cache
def pyx12_maps() -> dict[int, str]:
    return {id(ig._load_map(name)): name for name in MAPS}


@functools.cache
def compiled(name: str) -> dict:
    return compile_segments(name)


def rule_for(node: Any) -> SegmentRule:
    return compiled(pyx12_maps()[id(node.root)])[(node.parent.get_path(), node.pos, node.path)]


@functools.cache
def placed_segments() -> list[tuple[Any, list[str], str, str]]:
    """(pyx12 node, elements, element separator, component separator) of every segment pyx12's
    walker places at a segment node, in every seed file, as the scrubber drives it."""
    found: list[tuple[Any, list[str], str, str]] = []
    original = ig.apply_segment_errors

    def spy(node: Any, pseg: Segment, errh: Any) -> bool:
        found.append((node, elements_of(pseg), pseg.ele_term, pseg.subele_term))
        return original(node, pseg, errh)

    ig.apply_segment_errors = spy
    try:
        for path in seed_files():
            with path.open("rb") as stream:
                try:
                    reader = SegmentReader(stream)
                    validator = ig.GuideValidator(reader.delimiters)
                    for _event in EnvelopeReader(reader, reader.delimiters, validator.feed):
                        pass
                except InputError:
                    pass  # a file pyx12 cannot map past its envelope: its segments so far still count
    finally:
        ig.apply_segment_errors = original
    return found


def crash_is_listed(exc_name: str, rule: SegmentRule, elements: list[str], component: str) -> bool:
    """A pyx12 crash that DIFFERENCES explains for this input."""
    values = elements[1:]
    if exc_name == "IndexError":
        return any(
            isinstance(d, CompositeRule) and d.usage != "N" and i < len(values)
            and len(values[i].split(component)) > len(d.elements)
            for i, d in enumerate(rule.elements)
        ) and "too-many-components" in DIFFERENCES
    if exc_name == "ValueError":
        return any(v.count("-") > 1 for v in values) and "rd8-hyphens" in DIFFERENCES
    return False


def assert_same(node: Any, elements: list[str], element: str, component: str) -> str:
    """Compare; say what was compared: "clean", "errors" or "crash" (pyx12's outcome)."""
    rule = rule_for(node)
    theirs = pyx12_report(node, pyx12_segment(elements, element, component))
    mine = ours(rule, elements, component)
    if isinstance(theirs, str):
        assert crash_is_listed(theirs, rule, elements, component), (
            f"pyx12 raised {theirs} on {elements!r}, not a listed difference")
        assert mine, f"pyx12 crashed on {elements!r}; we must report something"
        return "crash"
    assert mine == theirs, f"{rule.key} {elements!r}"
    return "errors" if theirs else "clean"


# ------------------------------------------------------------------------------------------
# The compile


def _pyx12_segment_nodes(name: str) -> list[Any]:
    found: list[Any] = []

    def walk(node: Any) -> None:
        for _pos, children in sorted(node.pos_map.items()):
            for child in children:
                if child.is_segment():
                    found.append(child)
                else:
                    walk(child)

    walk(load_map_file(name, params()))
    return found


@pytest.mark.parametrize("name", MAPS)
def test_every_segment_node_of_the_map_is_compiled_once(name: str):
    nodes = _pyx12_segment_nodes(name)
    rules = compile_segments(name)
    assert len(distinct_rules(rules)) == len(nodes)
    assert {(n.parent.get_path(), n.pos, n.path) for n in nodes} <= set(rules)


@pytest.mark.parametrize("name", MAPS)
def test_every_element_is_compiled_as_pyx12_reads_it(name: str):
    rules = compile_segments(name)
    pyx12_map = load_map_file(name, params())
    ext = pyx12_map.ext_codes.codes
    for node in _pyx12_segment_nodes(name):
        rule = rules[(node.parent.get_path(), node.pos, node.path)]
        assert rule.key == (node.parent.get_path(), node.pos, node.path)
        assert (rule.seg_id, rule.name, len(rule.elements)) == (node.id, node.name, len(node.children))
        assert rule.icvn == (pyx12_map.icvn or "00401")
        assert [s[0] + "".join(f"{p:02d}" for p in s[1]) for s in rule.syntax] == [
            s[0] + "".join(f"{p:02d}" for p in s[1:]) for s in node.syntax]
        for d, child in zip(rule.elements, node.children, strict=True):
            if isinstance(child, composite_if):
                assert isinstance(d, CompositeRule)
                assert (d.refdes, d.name, d.usage) == (child.refdes, child.name, child.usage)
                pairs = list(zip(d.elements, child.children, strict=True))
            else:
                pairs = [(d, child)]
            for e, c in pairs:
                assert isinstance(e, ElementRule)
                assert (e.refdes, e.name, e.usage, e.seq, e.data_ele) == (c.refdes, c.name, c.usage, c.seq, c.data_ele)
                assert (e.data_type, e.min_len, e.max_len) == (c.data_type, c.min_len, c.max_len)
                assert e.code_list == tuple(c.valid_codes)
                want = set(c.valid_codes) | (ext[c.external_codes]["codes"] if c.external_codes else set())
                assert (e.codes is None) == (not c.valid_codes and c.external_codes is None)
                assert e.codes is None or e.codes == want
                assert (e.regex.pattern if e.regex else None) == (c.res or None)


def test_the_rules_unpickle_through_their_constructors_not_dataclass_setstate(monkeypatch):
    """A fresh process loads its rules from the cache: dataclasses' __setstate__ for a slotted
    class looks the fields up again for every object, which made the load of the 837P's rules
    about twice as slow. The rules unpickle through their constructors, the same rules."""
    rules = compile_segments("837.5010.X222.A1.xml")
    stored = pickle.dumps(rules, pickle.HIGHEST_PROTOCOL)

    def refused(self, state):
        raise AssertionError(f"{type(self).__name__} unpickled through __setstate__")

    monkeypatch.setattr(ElementRule, "__setstate__", refused, raising=False)
    monkeypatch.setattr(CompositeRule, "__setstate__", refused, raising=False)
    again = pickle.loads(stored)
    for key, rule in rules.items():
        assert [_fields(e) for e in again[key].elements] == [_fields(e) for e in rule.elements]


def _fields(rule: ElementRule | CompositeRule) -> tuple:
    if isinstance(rule, CompositeRule):
        return (rule.refdes, rule.name, rule.usage, tuple(_fields(e) for e in rule.elements))
    return (rule.refdes, rule.name, rule.usage, rule.seq, rule.data_ele, rule.data_type, rule.min_len,
            rule.max_len, rule.codes, rule.code_list, rule.regex.pattern if rule.regex else None, rule.required)


def test_a_rules_expression_is_built_only_once_it_has_checked_a_few_segments():
    """Building a fast-path expression takes about a millisecond: a rule builds its own (for one
    number of elements) only after _BUILD_AFTER segments took the exact checks, so the envelope
    and header segments, seen a few times a file, never pay for one. Either way, the same report."""
    from scrubber.x12.guide import segments as segments_module

    rules = compile_segments("837.5010.X222.A1.xml")
    rule = rules[("/ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2000B/2300", 1300, "CLM")]
    clean = ["CLM", "A1", "100", "", "", "11:B:1", "Y", "A", "Y", "I"]
    wrong = ["CLM", "A1", "100", "", "", "11:B:1", "Y", "A", "Y", "X"]
    for n in range(segments_module._BUILD_AFTER):
        assert check_segment(rule, clean, ":", "^", remember=False) == []
        assert [p.code for p in check_segment(rule, wrong, ":", "^", remember=False)] == ["7"]
        if n * 2 + 2 <= segments_module._BUILD_AFTER:
            assert per_component(rule, ":").patterns == {}
    assert check_segment(rule, clean, ":", "^", remember=False) == []
    assert list(per_component(rule, ":").patterns) == [9]
    assert [p.code for p in check_segment(rule, wrong, ":", "^", remember=False)] == ["7"]


@pytest.mark.parametrize("icvn", ["00501", "00401"])
@pytest.mark.parametrize("component", [":", "^", "\\", "]", "-", ">", "[", " ", "\x1d", ""])
def test_the_fast_paths_character_classes_as_ranges_hold_exactly_the_characters_pyx12_allows(
        icvn: str, component: str):
    """The classes are written as ranges ("[ -9;-~]"), which the regex parser reads faster than
    every character escaped: they must still hold exactly the characters of the set, less the
    component separator (none for the ISA, ""), whatever characters end a range."""
    from scrubber.x12.guide import seg_fast
    from scrubber.x12.guide.seg_types import bad_character_pattern

    text, no_space = seg_fast._text_classes(icvn, component)
    allowed = {chr(c) for c in range(128) if not bad_character_pattern(icvn).match(chr(c))} - {component}
    for c in map(chr, range(300)):
        assert (re.fullmatch(text, c) is not None) == (c in allowed), (icvn, component, c)
        assert (re.fullmatch(no_space, c) is not None) == (c in allowed - {" "}), (icvn, component, c)
    assert seg_fast._text_classes(icvn, component) is seg_fast._text_classes(icvn, component)  # built once
    for chars in ({"-", "]", "^"}, {"\\", "]", "^", "_"}, {"a", "c", "e"}, {"a", "b"}, {"x"}):
        for c in map(chr, range(128)):
            assert (re.fullmatch(seg_fast._char_class(chars), c) is not None) == (c in chars), (chars, c)


def test_the_compiled_tables_pickle_and_still_check():
    rules = compile_segments("837.5010.X222.A1.xml")
    again = pickle.loads(pickle.dumps(rules))
    key = ("/ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2000B/2300", 1300, "CLM")
    segment = ["CLM", "A1", "100", "", "", "11:B:1", "Y", "A", "Y", "I", "X"]
    assert check_segment(again[key], segment, ":", "^") == check_segment(rules[key], segment, ":", "^")
    assert [(p.code, p.refdes) for p in check_segment(again[key], segment, ":", "^")] == [("7", "CLM10")]
    # What a rule learns while checking (memo, expressions) is not part of the table.
    assert pickle.dumps(rules[key]) == pickle.dumps(compile_segments("837.5010.X222.A1.xml")[key])
    assert pickle.loads(pickle.dumps(rules[key])).by_component == {}


def test_a_position_shared_by_several_nodes_is_keyed_by_pyx12s_qualified_name():
    rules = compile_segments("837.5010.X222.A1.xml")
    loop = "/ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2010AA"
    assert (loop, 350, "REF") not in rules  # three REF nodes at 350: the plain id is ambiguous
    assert rules[(loop, 350, "REF[EI]")].elements[0].code_list == ("EI", "SY")
    assert rules[(loop, 150, "NM1")].seg_id == "NM1"
    assert all(key == rule.key or key[2] == rule.seg_id for key, rule in rules.items())
    assert len({rule.key for rule in rules.values()}) == len(distinct_rules(rules))


# ------------------------------------------------------------------------------------------
# Differential


def test_the_seed_files_give_segments_of_every_map():
    maps = {pyx12_maps()[id(node.root)] for node, *_ in placed_segments()}
    assert maps == set(MAPS)
    assert len(placed_segments()) > 5000


def test_every_placed_segment_draws_what_pyx12_reports():
    outcomes = Counter(assert_same(*placed) for placed in placed_segments())
    assert outcomes["clean"] > 5000 and outcomes["errors"] > 50, outcomes


def test_the_fast_path_decides_almost_every_clean_segment():
    """The expression path must not go dead quietly (everything would still pass, slowly): the
    clean segments of the seeds go by it (all of them today; a value with trailing spaces shorter
    than its minimum would not, and is still clean)."""
    fast = clean = 0
    for node, elements, element, component in placed_segments():
        if pyx12_report(node, pyx12_segment(elements, element, component)):
            continue
        rule = rule_for(node)
        tables = per_component(rule, component)
        clean += 1
        fast += clean_by_pattern(rule, tables, component, len(elements) - 1, tables.separator.join(elements))
    assert fast >= 0.99 * clean, (fast, clean)


@pytest.mark.parametrize("component", ["^", "\\", "]", "-", ">", "\x1d"])
def test_any_component_separator_draws_what_pyx12_reports(component: str):
    """The expressions are built per component separator, which may be a character regular
    expressions treat specially, or the character the fast path joins elements with."""
    rng = random.Random(component)
    samples = [s for s in placed_segments() if s[1][0] != "ISA"]
    for node, elements, element, original in rng.sample(samples, 1500):
        if component == element or any(component in v for v in elements[1:]):
            continue
        moved = [v.replace(original, component) for v in elements]
        assert_same(node, moved, element, component)
        if rng.random() < 0.5:
            assert_same(node, _mutate(rng, moved, rule_for(node), component), element, component)


def _mutate(rng: random.Random, elements: list[str], rule: SegmentRule, component: str) -> list[str]:
    out = list(elements)
    i = rng.randrange(1, len(out) + 1)
    if i == len(out):
        out.append(rng.choice(["", "X", "1", component.join(["A", "B"])]))
        return out
    value = out[i]
    d = rule.elements[i - 1] if i - 1 < len(rule.elements) else None
    first = d.elements[0] if isinstance(d, CompositeRule) and d.elements else d
    kind = rng.randrange(19)
    if kind == 0:
        value = ""
    elif kind == 1:
        value = rng.choice(["ABC", "12.5.3", "-", "1e5", "1.", ".5", "-0", "--1", "abc", "12-3"])
    elif kind == 2:
        value = (value or "9") * rng.randint(2, 40)
    elif kind == 3:
        value = value[:1]
    elif kind == 4:
        value = rng.choice(["ZZ", "XX", "99", "A", "00", "1"])
    elif kind == 5:
        value = value + component + rng.choice(["X", "", "1", "ZZ"]) * rng.randint(1, 6)
    elif kind == 6:
        pos = rng.randrange(len(value) + 1)
        value = value[:pos] + rng.choice(CONTROL) + value[pos:]
    elif kind == 7:
        value = "".join("?" if rng.random() < 0.3 else c for c in value) or "?"
    elif kind == 8:
        value = value + " " * rng.randint(1, 3)
    elif kind == 9:
        value = rng.choice(["20261332", "20260230", "20240229", "19000229", "17991231", "261130", "2026-11-30",
                            "20260101-20260102", "20260101-20260102-20260103", "20260101-2026013", "2400", "2359",
                            "235960", "12345", "1200000", "120000001", "201211301200", "201211302560", "-"])
    elif kind == 10:
        out = out[: rng.randrange(1, len(out) + 1)]
        return out
    elif kind == 11:
        value = "".join(rng.choice("AZaz09 ^`{}|~!#$%&'()*+,-./:;<=>?@[\\]_\"") for _ in range(rng.randint(1, 12)))
    elif kind == 12 and first is not None and first.codes:
        value = rng.choice(sorted(c for c in first.codes if c is not None) or ["X"])
    elif kind == 13:
        value = component * rng.randint(1, 4)
    elif kind == 14:
        value = " " + value
    elif kind == 15 and first is not None:
        value = "9" * rng.choice([max(first.min_len - 1, 1), first.max_len, first.max_len + 1])
    elif kind == 16:
        out.extend([""] * rng.randint(1, 3))
        return out
    elif kind == 17 and value:
        keep = rng.randrange(len(value))  # padded with spaces to the same length
        value = value[:keep] + " " * (len(value) - keep)
    else:
        value = value.lower() + "é"
    out[i] = value
    return out


def test_seeded_mutations_of_real_segments_draw_what_pyx12_reports():
    rng = random.Random(11)
    samples = placed_segments()
    outcomes: Counter[str] = Counter()
    for _ in range(MUTATIONS):
        node, elements, element, component = rng.choice(samples)
        mutated = _mutate(rng, elements, rule_for(node), component)
        for _ in range(rng.randrange(2)):  # sometimes two mutations at once
            mutated = _mutate(rng, mutated, rule_for(node), component)
        if any(element in v for v in mutated[1:]):
            continue  # cannot be a value: the separator splits it
        outcomes[assert_same(node, mutated, element, component)] += 1
    # Enough of each outcome that the comparison means something.
    assert sum(outcomes.values()) >= 2000
    assert outcomes["errors"] >= 1000 and outcomes["clean"] >= 200 and outcomes["crash"] >= 10, outcomes


def _clean_value(d: ElementRule) -> str:
    """A value pyx12 takes for this element (its first code, else one of its type and length)."""
    if d.code_list and d.code_list[0]:
        return d.code_list[0]
    if d.codes:
        return sorted(c for c in d.codes if c)[0]
    dated = {"D8": "20260101", "DT": "20260101", "D6": "260101", "TM": "1200"}
    if d.data_type in dated:
        return dated[d.data_type][: d.max_len] if d.data_type != "TM" else "1200"[: max(d.min_len, 4)]
    return ("1" if d.data_type in ("R", "N0", "N2") else "A") * d.min_len


def _full_segment(rule: SegmentRule, component: str) -> list[str]:
    """Every element the guide uses, with a clean value."""
    out = [rule.seg_id]
    for d in rule.elements:
        if isinstance(d, CompositeRule):
            parts = ["" if e.usage == "N" else _clean_value(e) for e in d.elements]
            out.append("" if d.usage == "N" else component.join(parts).rstrip(component))
        else:
            out.append("" if d.usage == "N" else _clean_value(d))
    return out


def _pyx12_nodes_by_key() -> dict[tuple[str, int, str], Any]:
    found = {}
    for name in MAPS:
        for node in _pyx12_segment_nodes_of(ig._load_map(name)):
            found[(name, node.parent.get_path(), node.pos, node.path)] = node
    return found


def _pyx12_segment_nodes_of(root: Any) -> list[Any]:
    found: list[Any] = []

    def walk(node: Any) -> None:
        for _pos, children in sorted(node.pos_map.items()):
            for child in children:
                (found.append(child) if child.is_segment() else walk(child))

    walk(root)
    return found


def test_every_rule_every_length_and_every_syntax_combination_draws_what_pyx12_reports():
    """Built from the guide, not the files: for every segment node, a segment with every used
    element, cut at every length, and every presence pattern of each syntax rule's elements."""
    outcomes: Counter[str] = Counter()
    syntax_errors = 0
    for (name, path, pos, seg_name), node in _pyx12_nodes_by_key().items():
        rule = compiled(name)[(path, pos, seg_name)]
        full = _full_segment(rule, ":")
        cases = [full[:k] for k in range(1, len(full) + 1)]
        for _kind, positions in rule.syntax:
            for mask in range(1 << len(positions)):
                case = list(full)
                for bit, p in enumerate(positions):
                    if not mask >> bit & 1:
                        case[p] = ""
                cases.append(case)
        for case in cases:
            outcome = assert_same(node, case, "*", ":")
            outcomes[outcome] += 1
            if outcome == "errors":
                syntax_errors += any(m.startswith("Syntax Error") for *_, m in ours(rule, case, ":"))
    assert outcomes["clean"] > 1000 and outcomes["errors"] > 1000 and syntax_errors > 500, (outcomes, syntax_errors)


# ------------------------------------------------------------------------------------------
# One behaviour each


def _rule(key: tuple[str, int, str], name: str = "837.5010.X222.A1.xml") -> SegmentRule:
    return compiled(name)[key]


CLM = ("/ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2000B/2300", 1300, "CLM")
DTP_SERVICE = ("/ISA_LOOP/GS_LOOP/ST_LOOP/DETAIL/2000A/2000B/2300/2400", 4550, "DTP[472]")


def test_too_many_components_in_a_composite_is_one_segment_error_where_pyx12_crashes():
    problems = check_segment(_rule(CLM), ["CLM", "A1", "100", "", "", "11:B:1:9", "Y", "A", "Y", "I"], ":", "^")
    assert problems == [ElementProblem("seg", "8", None, 'Too many sub-elements in composite '
                                       '"Health Care Service Location Information" (CLM05)', "11:B:1:9")]


def test_a_date_range_with_two_hyphens_is_an_invalid_date_where_pyx12_crashes():
    problems = check_segment(_rule(DTP_SERVICE), ["DTP", "472", "RD8", "20260101-20260102-20260103"], ":", "^")
    assert [(p.kind, p.code, p.refdes) for p in problems] == [("ele", "8", "DTP03")]


_TINY_MAP = """<?xml version="1.0"?>
<transaction xid="T">
  <loop xid="L1"><pos>1</pos>
    <segment xid="REF"><name>Reference</name><usage>R</usage><pos>10</pos>
      <element xid="REF01"><data_ele>128</data_ele><name>Qualifier</name><usage>R</usage><seq>01</seq>
        <valid_codes{external}><code>EI</code></valid_codes></element>
      <element xid="REF02"><data_ele>{data_ele}</data_ele><name>Id</name><usage>R</usage><seq>{seq}</seq></element>
    </segment>
  </loop>
</transaction>
"""


def _tiny_map(tmp_path: Path, external: str = "", data_ele: str = "127", seq: str = "02") -> Path:
    for name in ("dataele.xml", "codes.xml"):
        (tmp_path / name).write_bytes((map_folder() / name).read_bytes())
    text = _TINY_MAP.replace("{external}", external).replace("{data_ele}", data_ele).replace("{seq}", seq)
    (tmp_path / "tiny.xml").write_text(text)
    return tmp_path


def test_a_map_read_from_another_folder_compiles_with_that_folders_data_elements(tmp_path: Path):
    rules = compile_segments("tiny.xml", _tiny_map(tmp_path))
    rule = rules[("/L1", 10, "REF")]
    assert [p.code for p in check_segment(rule, ["REF", "XX", "1"], ":", None)] == ["7"]
    assert check_segment(rule, ["REF", "EI", "1"], ":", None) == []


@pytest.mark.parametrize(("change", "named"), [
    ({"external": ' external="no_such_set"'}, "no_such_set"),
    ({"data_ele": "99999"}, "99999"),
    ({"seq": "03"}, "gap"),
])
def test_a_map_pyx12_would_fail_on_is_refused_at_compile_time_naming_what(tmp_path: Path, change: dict, named: str):
    with pytest.raises(GuideCompileError, match=named):
        compile_segments("tiny.xml", _tiny_map(tmp_path, **change))


def test_the_memo_gives_each_caller_its_own_list():
    rule = _rule(CLM)
    segment = ["CLM", "A1", "100", "", "", "11:B:1", "Y", "A", "Y", "I", "", "", "", "", "", "", "", "", "", "", "", ""]
    first = check_segment(rule, segment, ":", "^")
    first.clear()
    assert check_segment(rule, segment, ":", "^")  # too many elements, still reported
