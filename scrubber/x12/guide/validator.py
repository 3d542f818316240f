"""The compiled implementation-guide validator: pyx12's checks, without pyx12's walker.

`CompiledValidator` has the API of `scrubber.x12.ig.GuideValidator` (feed / take_errors / finish)
and reports the same `StructuralError`s. Per segment it runs, in pyx12's order:

1. the reader's checks (pyx12's X12Reader: segment id, empty segment, envelope control numbers and
   counts, HL01 counting and HL02 parents, the 837 LX numbering), kept as pyx12 keeps them: they are
   reported once the segment is placed, so those of a segment the walker could not place go with
   the next segment that it places;
2. the walk (walker.py): where the segment goes in the guide, and what is missing, repeated too
   often, not used or out of place on the way there;
3. the element checks of the segment node it was placed at (segments.py, from the SEG branch; the
   pyx12 fallback until it is merged: see `_element_checker`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from ...bounded import kept
from ...errors import InputError
from ..envelope import Group
from ..structural import _HANDLED_ELSEWHERE, _MAP_FILES, _MISSING, _UNREADABLE, SetErrors, StructuralError
from ..tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id
from . import segments
from .cache import cached
from .loops import COMPILER_VERSION, SEGMENT, GuideTables, compile_loops, map_path
from .walker import Walker

CONTROL_MAP = "x12.control.00501.xml"

# problems of one segment: (kind "seg"/"ele", code, refdes, message, bad value)
Problems = list[tuple[str, str, str | None, str, str | None]]
ElementChecker = Callable[[int, list[str], str], Problems]


def load_tables(map_file: str) -> GuideTables:
    """The loop tables of one map: from memory, the cache folder, or compiled now."""
    return cached("loops", map_path(map_file), COMPILER_VERSION, lambda: compile_loops(map_file), GuideTables)


def _element_checker(map_file: str, tables: GuideTables, delimiters: Delimiters) -> ElementChecker:
    """How the elements of a segment placed at a node are checked: by the compiled segment rule of
    that node (segments.py), found by node number, a list index per segment."""
    component, repetition = delimiters.component, delimiters.repetition
    # The SegmentKey of each node: (holding loop's path, position, pyx12's name of the node). The
    # name is the id, or the id and its first qualifier code ("REF[EI]") where several nodes share
    # the position (the 837P's 2010AA holds three REF at 350): (path, position, id) alone does not
    # tell those apart.
    keys = [(tables.parent_path[i], tables.pos[i], tables.path[i].rsplit("/", 1)[1])
            for i in range(len(tables.kind))]
    rules = segments_rules(map_file)
    check = segments.check_segment
    rule_of = [rules.get(key) for key in keys]
    # The problems of a segment depend only on its node and its elements, and the delimiters are
    # this checker's: one dict hit on (node, text) for a segment seen before at that node.
    memo: dict[tuple[int, str], Problems] = {}

    def compiled(node: int, elements: list[str], text: str) -> Problems:
        key = (node, text)
        problems = memo.get(key)
        if problems is None:
            found = check(rule_of[node], elements, component, repetition, remember=False)
            problems = [(p.kind, p.code, p.refdes, p.message, p.value) for p in found] if found else _NONE
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = problems
        return problems
    compiled.memo = memo  # type: ignore[attr-defined]  # (for the tests: it stays bounded)
    return compiled


_NONE: Problems = []  # (shared, never changed: no problem)
# Segments remembered per checker (cleared when full). Most texts never come again (claim ids,
# names), so a large memo only holds them: 50,000 (about 8 MiB) was reached between 10,000 and
# 100,000 claims and kept the validator's peak, a --jobs worker's, and one large set's main
# process growing until then; 8,192 fills in a few thousand claims and is no slower.
_MEMO_LIMIT = 8192


def segments_rules(map_file: str) -> Any:
    return cached("segments", map_path(map_file), COMPILER_VERSION * 1000 + segments.COMPILER_VERSION,
                  lambda: segments.compile_segments(map_file), dict)


class _Reader:
    """pyx12's X12Reader checks (x12file.X12Base._parse_segment, X12Reader._parse_segment and
    cleanup), over our own split of the segment. Errors are (level, code, message)."""

    __slots__ = ("check_837_lx", "component", "element", "errors", "gs_count", "gs_ids", "hl_count", "hl_stack",
                 "isa_ids", "loops", "lx_count", "seg_count", "st_count", "st_ids")

    def __init__(self, element: str, component: str) -> None:
        self.element = element
        self.component = component
        self.errors: list[tuple[str, str, str]] = []
        self.loops: list[tuple[str, str | None]] = []
        self.hl_stack: list[int | None] = []
        self.gs_count = self.st_count = self.hl_count = self.seg_count = self.lx_count = 0
        # Sets, not lists (pyx12's): a group of 100,000 one-claim sets looked each ST02 up among
        # all those before it.
        self.isa_ids: set[str | None] = set()
        self.gs_ids: set[str | None] = set()
        self.st_ids: set[str | None] = set()
        self.check_837_lx = False

    def parse(self, seg_id: str, parts: list[str]) -> None:
        # pyx12's Segment.is_empty: no element, or every component of every element empty (the
        # ISA's elements are not split into components). The first element settles it mostly.
        component = "" if seg_id == "ISA" else self.component
        first = parts[1] if len(parts) > 1 else ""
        # (str.strip("") strips nothing: the others are empty when their concatenation strips
        # to nothing, with or without components.)
        if not (first and (not component or first.strip(component))) and \
                not "".join(parts[2:]).strip(component):
            self.errors.append(("seg", "8", f'Segment "{self.element.join(parts)}" is empty'))
        if seg_id not in _VALID_IDS:
            if 2 <= len(seg_id) <= 3 and _SEG_ID(seg_id):
                _VALID_IDS.add(seg_id)
                if seg_id not in _COUNTED:
                    _PLAIN_IDS.add(seg_id)
            else:
                self.errors.append(("seg", "1", f'Segment identifier "{seg_id}" is invalid'))
        if seg_id in _COUNTED:
            self._counted(seg_id, parts, component)
        else:
            self.seg_count += 1

    def _counted(self, seg_id: str, parts: list[str], component: str) -> None:
        """The segments the reader counts or matches (envelope, HL, CLM, LX)."""
        if seg_id not in _ENVELOPE_IDS:
            # HL, CLM, LX: most of these segments, checked first and without the envelope's steps
            if seg_id == "HL":
                self.hl_count += 1
                hl01 = parts[1].rstrip(component) if len(parts) > 1 else None
                if self.hl_count != _int(hl01):
                    self.errors.append(("seg", "HL1", f"My HL count {self.hl_count:d} does not match your HL "
                                                      f"count {hl01}"))
                hl02 = parts[2].rstrip(component) if len(parts) > 2 else None
                if hl02 != "":
                    parent = _int(hl02)
                    stack = self.hl_stack
                    if parent not in stack:
                        # pyx12 then empties its stack, so every later HL of the set is "not a valid
                        # parent" too and every later claim is rejected: one wrong HL02 is one error
                        # (differences.py, "An HL02 that names no open level"). The stack stays as it was.
                        self.errors.append(("seg", "HL2", f"HL parent ({parent}) is not a valid parent"))
                    else:
                        while parent != stack[-1]:
                            del stack[-1]
                self.hl_stack.append(self.hl_count)
            elif self.check_837_lx:
                if seg_id == "CLM":
                    self.lx_count = 0
                else:  # LX
                    self.lx_count += 1
                    lx01 = parts[1].rstrip(component) if len(parts) > 1 else None
                    if lx01 != f"{self.lx_count:d}":
                        self.errors.append(("seg", "LX", f"Your 2400/LX01 Service Line Number {lx01} does not "
                                                         f"match my count of {self.lx_count:d}"))
            self.seg_count += 1
            return
        errors = self.errors
        element = self.element

        def value(i: int) -> str | None:
            return parts[i].rstrip(component) if i < len(parts) else None

        if seg_id == "ISA":
            if len(parts) - 1 != 16:
                raise _ReaderError("X12Error", f"The ISA segment must have 16 elements ({element.join(parts)})")
            number = value(13)
            if number in self.isa_ids:
                errors.append(("isa", "025", f"ISA Interchange Control Number {number} not unique within file"))
            self.loops.append(("ISA", number))
            self.isa_ids.add(number)
            self.gs_count = 0
            self.gs_ids = set()
        elif seg_id == "GS":
            number = value(6)
            if number in self.gs_ids:
                errors.append(("gs", "6", f"GS Interchange Control Number {number} not unique within file"))
            self.gs_count += 1
            self.gs_ids.add(number)
            self.loops.append(("GS", number))
            self.st_count = 0
            self.st_ids = set()
        elif seg_id == "ST":
            self.hl_stack = []
            number = value(2)
            if number in self.st_ids:
                errors.append(("st", "23", f"ST Interchange Control Number {number} not unique within file"))
            self.st_count += 1
            self.st_ids.add(number)
            self.loops.append(("ST", number))
            self.seg_count = 1
            self.hl_count = 0
        # X12Reader's own trailer checks; an unmatched trailer raises IndexError as pyx12 does.
        if seg_id == "IEA":
            loops = self.loops
            if loops[-1][0] != "ISA":
                errors.append(("isa", "024", f"Unterminated Loop {loops[-1][0]}"))
                del loops[-1]
            if loops[-1][1] != value(2):
                errors.append(("isa", "001", f"IEA id={value(2)} does not match ISA id={loops[-1][1]}"))
            if _int(value(1)) != self.gs_count:
                errors.append(("isa", "021", f"IEA count for IEA02={value(2)} is wrong"))
            del loops[-1]
        elif seg_id == "GE":
            loops = self.loops
            if loops[-1][0] != "GS":
                errors.append(("gs", "3", f"Unterminated segment {loops[-1][1]}"))
                del loops[-1]
            if loops[-1][1] != value(2):
                errors.append(("gs", "4", f"GE id={value(2)} does not match GS id={loops[-1][1]}"))
            if _int(value(1)) != self.st_count:
                errors.append(("gs", "5", f"GE count of {value(1)} for GE02={value(2)} is wrong. "
                                          f"I count {self.st_count}"))
            del loops[-1]
        elif seg_id == "SE":
            loops = self.loops
            number = value(2)
            if loops[-1][0] != "ST" or loops[-1][1] != number:
                errors.append(("st", "3", f"SE id={number} does not match ST id={loops[-1][1]}"))
            if _int(value(1)) != self.seg_count + 1:
                errors.append(("st", "4", f"SE count of {value(1)} for SE02={number} is wrong. "
                                          f"I count {self.seg_count + 1}"))
            del loops[-1]

    def cleanup(self) -> None:
        for seg, number in self.loops:
            if seg == "ST":
                self.errors.append(("st", "2", f'Mandatory segment "Transaction Set Trailer" (SE={number}) missing'))
            elif seg == "GS":
                self.errors.append(("gs", "3", f'Mandatory segment "Functional Group Trailer" (GE={number}) missing'))
            elif seg == "ISA":
                self.errors.append(("isa", "023",
                                    f'Mandatory segment "Interchange Control Trailer" (IEA={number}) missing'))


class _ReaderError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_ENVELOPE_IDS = frozenset(("ISA", "IEA", "GS", "GE", "ST", "SE"))
_COUNTED = _ENVELOPE_IDS | {"HL", "CLM", "LX"}
_VALID_IDS: set[str] = set()  # segment ids found valid (a few dozen): checked once a process
_PLAIN_IDS: set[str] = set()  # those of them the reader does not count: its fast path


# pyx12's rec_seg_id, as it is: its $ also matches before a final line break, so "N3\n" passes
# (the walk reports such a segment as not found anyway).
_SEG_ID = re.compile("^[A-Z][A-Z0-9]{1,2}$", re.S).search


def _int(value: str | None) -> int | None:
    """pyx12's X12Base._int: int() or None."""
    try:
        return int(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


_SEGMENT_FLAGS: dict[int, tuple[GuideTables, list[bool]]] = {}


def _segment_flags(tables: GuideTables) -> list[bool]:
    """Which nodes of the tables are segment nodes (the ones with element checks), per node."""
    entry = _SEGMENT_FLAGS.get(id(tables))
    if entry is None:  # (the entry keeps the tables alive, so that their id stays theirs)
        entry = _SEGMENT_FLAGS[id(tables)] = (tables, [k == SEGMENT for k in tables.kind])
    return entry[1]


_CHECKERS: dict[tuple[str, Delimiters], ElementChecker] = {}

# What feed did with a segment, by (node of the segment before, segment text), for the segments
# whose handling follows from those two: an ASCII text without leading white space or a trailing
# separator, that the walk placed. The value is (the walk's trace, the element problems at the
# node it found, whether the reader must read it again). Most segments of a file are the same
# few texts after the same few nodes (N4*SPRINGFIELD*IL*62701 after N3, DTP*472 after SV1): for
# those, feed is one dict look-up, the trace followed again (the counts and any repeat exceeded
# are this time's) and the problems reported again, with no split and no walk key. A text is
# kept once seen twice at its node (the element checks' memo has it), so that the texts seen
# once (claim ids, names, HL numbers) do not push the others out. One dict per map and
# delimiters (node numbers are the map's; the walk reads qualifiers with the file's component
# separator); cleared when full, as a file of endless distinct segments would fill it.
_PLACED: dict[tuple[str, Delimiters], dict[tuple[int, str], tuple[tuple, Problems, bool]]] = {}
_PLACED_LIMIT = 4096
# Maps and delimiters whose checker and placed segments are kept for the process (each up to a
# few MB): a watcher takes files with whatever delimiters their senders chose, and a sender could
# send endless new ones. The oldest is forgotten first; a validator keeps what it holds.
_KEPT_DELIMITERS = 16


# A message made again for each of many alike errors (a flood of one unknown segment) is one
# string, not one each: a set's errors are held until its claims are judged, and the log of pass
# 1 pickles a shared string once. (Interned strings are freed with their last error.)
_shared = sys.intern


class CompiledValidator:
    """Feed every segment of a file in order; read the errors as they accumulate."""

    def __init__(self, delimiters: Delimiters) -> None:
        self._d = delimiters
        self._element = delimiters.element  # (read once a segment: kept at hand)
        self._component = delimiters.component
        self._control = load_tables(CONTROL_MAP)
        self._tables = self._control
        self._is_segment = _segment_flags(self._control)
        self._map_file = CONTROL_MAP
        self._walker = Walker(delimiters.component)
        self._walker.use(self._control)
        self._node = self._control.by_path["/ISA_LOOP/ISA"]
        self._reader = _Reader(delimiters.element, delimiters.component)
        self._checker = self._checker_for(CONTROL_MAP, self._control)
        self._checked = self._checker.memo  # type: ignore[attr-defined]
        self._placed = kept(_PLACED, (CONTROL_MAP, delimiters), dict, _KEPT_DELIMITERS)
        self.errors: SetErrors = SetErrors()
        self._current = 0
        self._previous = 0
        self._current_id = ""
        self._accepted_versions: set[str] = set()

    def _checker_for(self, map_file: str, tables: GuideTables) -> ElementChecker:
        """One checker per map and delimiters for the process: a file of a few claims should
        not pay for building it (the mutation tests run thousands of those)."""
        return kept(_CHECKERS, (map_file, self._d), lambda: _element_checker(map_file, tables, self._d),
                    _KEPT_DELIMITERS)

    def take_errors(self) -> SetErrors:
        errors = self.errors
        self.errors = SetErrors()
        return errors

    def feed(self, seg: Segment, seg_id: str, group: Group | None) -> None:
        """Validate one segment; empty segments are reported by the syntax checks, not here."""
        text = seg.text
        node = self._node
        placed = self._placed.get((node, text))
        if placed is not None:
            # A text placed from this node before (see _PLACED): what the slow path below would
            # do for it, in its order (walk errors, the reader's errors left by a segment it
            # could not place, the element problems).
            self._previous = self._current
            self._current = seg.index
            self._current_id = seg_id
            walker = self._walker
            try:
                if placed[2]:
                    # HL, CLM, LX and the trailers are counted, and a text the reader found
                    # something wrong with is checked again: what it says depends on the count
                    self._reader.parse(seg_id, text.split(self._element))
                else:
                    self._reader.seg_count += 1
                found = walker.follow(placed[0], seg_id)
            except Exception as exc:  # (as below: a segment the validator cannot read)
                self._unreadable(seg, seg_id, exc)
                return
            if walker.pending:
                self._walk_errors(walker.pending)
            if self._reader.errors:
                self._reader_errors()
            if placed[1]:
                self._element_errors(placed[1])
            self._node = found
            return
        # GuideValidator's `not text.strip()`, without copying every segment: only a text that
        # starts with white space (str.isspace: also \x1c-\x1f, \x85, \xa0) can strip to nothing.
        if not text or (text[0].isspace() and not text.strip()):
            return
        try:
            # This runs once a segment: attributes are read once into locals, and the common case
            # (an ASCII segment with a valid id, placed by a recorded walk) makes no call it can avoid.
            self._previous = self._current
            self._current = seg.index
            self._current_id = seg_id
            reader = self._reader
            element = self._element
            if text.isascii() and text[0] not in NOT_AN_ID:  # (feed passes no empty text)
                # the envelope reader split it already, on these delimiters
                parts = seg._elements or text.split(element)
            else:
                if not text.isascii():
                    text = text.encode("ascii", "replace").decode("ascii")
                if text[0] in NOT_AN_ID:
                    reader.errors.append(("seg", "1", "Segment contains a leading space" if text.startswith(" ")
                                          else "Segment starts with white space or a control character"))
                    text = segment_id(text)
                parts = text.split(element)
            if text.endswith(element):
                reader.errors.append(("seg", "SEG1", "Segment contains trailing element terminators"))
            # (pyx12's Segment drops a trailing segment terminator: the tokenizer leaves none.)
            pid = parts[0]
            if len(parts) > 1 and pid in _PLAIN_IDS and (first := parts[1]) and first[0] != self._component:
                reader.seg_count += 1  # the reader's fast path, inlined: a valid id, not empty, not counted
                parsed = False
            else:
                reader.parse(pid, parts)
                parsed = True
            walker = self._walker
            if seg_id == "ISA":
                self._use(self._control, CONTROL_MAP)
                node = self._control.by_path["/ISA_LOOP/ISA"]
                walker.force_loop_start("/ISA_LOOP", "/ISA_LOOP/ISA")
            elif seg_id == "GS":
                if self._tables is not self._control:
                    self._use(self._control, CONTROL_MAP)
                node = self._control.by_path["/ISA_LOOP/GS_LOOP/GS"]
                walker.force_loop_start("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
            else:
                node = walker.walk(self._node, pid, parts)
                if walker.pending:
                    self._walk_errors(walker.pending)
                if node < 0:
                    return
                if reader.errors:
                    self._reader_errors()
                problems = _NONE
                again = True  # (a text seen before at this node: see _PLACED)
                if self._is_segment[node]:
                    problems = self._checked.get((node, text))  # the checker's memo, without the call
                    if problems is None:
                        again = False
                        problems = self._checker(node, parts, text)
                    if problems:
                        self._element_errors(problems)
                if again and text is seg.text and text[-1] != element:
                    placed_memo = self._placed
                    if len(placed_memo) >= _PLACED_LIMIT:
                        placed_memo.clear()
                    placed_memo[(self._node, text)] = (walker.trace, problems, parsed)
                self._node = node
                return
            if seg_id == "GS" and group is not None:
                self._accepted_versions = {group.version.found}
                map_file = _MAP_FILES[group.version.read_as]
                self._use(load_tables(map_file), map_file)
                reader.check_837_lx = True
                node = self._tables.by_path["/ISA_LOOP/GS_LOOP/GS"]
            if reader.errors:
                self._reader_errors()
            if self._is_segment[node]:
                problems = self._checker(node, parts, text)
                if problems:
                    self._element_errors(problems)
            self._node = node
        except Exception as exc:
            self._unreadable(seg, seg_id, exc)

    def _unreadable(self, seg: Segment, seg_id: str, exc: Exception) -> None:
        """As GuideValidator: a segment the validator cannot read is an error of that segment;
        at ISA or GS (which choose the guide) nothing after it can be trusted."""
        kind = exc.kind if isinstance(exc, _ReaderError) else type(exc).__name__
        if seg_id in ("ISA", "GS"):
            raise InputError(
                f"the implementation-guide validator could not read the {seg_id}: {kind}",
                code="validator", offset=seg.offset, segment=seg.index,
            ) from exc
        self.errors.append(StructuralError(
            seg.index, seg_id, None, _UNREADABLE, "seg",
            f"the implementation-guide validator could not read this segment ({kind})",
        ))

    def _use(self, tables: GuideTables, map_file: str) -> None:
        self._tables = tables
        self._is_segment = _segment_flags(tables)
        self._map_file = map_file
        self._walker.use(tables)
        self._checker = self._checker_for(map_file, tables)
        self._checked = self._checker.memo  # type: ignore[attr-defined]
        self._placed = kept(_PLACED, (map_file, self._d), dict, _KEPT_DELIMITERS)

    def _walk_errors(self, pending: list[tuple[str, str, int]]) -> None:
        """apply_walk_errors + _Collector.seg_error: a missing segment goes with the segment
        before (its loop is where the gap is); an error names its map node when it has one."""
        if not pending:
            return
        xid = self._tables.xid
        for code, message, node in pending:
            where = self._previous if code in _MISSING and self._previous else self._current
            subject = xid[node] if node >= 0 else self._current_id
            self.errors.append(StructuralError(where, subject, None, code, "seg", _shared(message)))

    def _reader_errors(self) -> None:
        reader = self._reader
        if not reader.errors:
            return
        for level, code, message in reader.errors:
            if (level, code) in _HANDLED_ELSEWHERE:
                continue
            self.errors.append(StructuralError(self._current, self._current_id, None, code, level, _shared(message)))
        reader.errors = []

    def _element_errors(self, problems: Problems) -> None:
        for kind, code, refdes, message, value in problems:
            if kind == "seg":
                where = self._previous if code in _MISSING and self._previous else self._current
                self.errors.append(StructuralError(where, self._current_id, None, code, "seg", _shared(message)))
            else:
                if code == "7" and refdes in ("GS08", "ST03") and value in self._accepted_versions:
                    # GS08/ST03 name an erratum we read as the guide pyx12 has (X222A2 as
                    # X222A1): not an error for us (as GuideValidator).
                    continue
                self.errors.append(StructuralError(self._current, self._current_id, refdes, code, "ele",
                                                   _shared(message)))

    def finish(self) -> None:
        self._reader.cleanup()
        self._reader_errors()

