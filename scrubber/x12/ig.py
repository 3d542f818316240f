"""Implementation-guide validation (WEDI SNIP levels 1 and 2) with pyx12's maps and walker.

pyx12's own driver (x12n_document) reads the file itself and keeps errors in a tree made for
its 999. We drive its map walker and segment validation from our own segment stream instead,
so the file is tokenized once, every error is tied to the segment index the rest of the
scrubber uses, and the raw-input checks run before pyx12 sees anything (it crashes on bytes
that are not ASCII and stops at an empty segment).

Since issue 11 the default validator is the compiled one (scrubber.x12.guide); this driver is the
second opinion (`--validator pyx12`) and the one module that touches pyx12's internals (what
pyx12 documents as its API is only x12n_document). PYX12_INTERNALS lists them all, with the
parameters we call them with; tests/test_pyx12_internals.py fails, naming what changed, when a
pyx12 release changes one. The compiled guide reads pyx12's map files (pyx12/map/*.xml) with lxml
and no pyx12 code.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import pyx12.errors
import pyx12.map_if
import pyx12.params
import pyx12.segment
import pyx12.x12file
from pyx12.map_if._segment import apply_segment_errors
from pyx12.map_walker import apply_walk_errors, walk_tree

from ..errors import InputError
from .envelope import Group
from .structural import _HANDLED_ELSEWHERE, _MAP_FILES, _MISSING, _UNREADABLE, SetErrors, StructuralError
from .tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id

# pyx12 logs every error it finds; the scrubber reports them itself.
logging.getLogger("pyx12").setLevel(logging.CRITICAL)

_CONTROL_MAP = "x12.control.00501.xml"


# Every pyx12 internal the project uses: (module, attribute path, the parameters we pass, in
# order, or None for an attribute that is not called). Keep in step with the code below.
PYX12_INTERNALS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("pyx12.map_if", "load_map_file", ("map_file", "param")),
    ("pyx12.params", "params", ()),
    ("pyx12.map_if", "segment_if", None),
    ("pyx12.map_if._segment", "apply_segment_errors", ("node", "seg_data", "errh")),
    ("pyx12.map_walker", "walk_tree", ()),
    ("pyx12.map_walker", "walk_tree.walk_errors", ("self", "node", "seg_data", "seg_count", "cur_line", "ls_id")),
    ("pyx12.map_walker", "walk_tree.forceWalkCounterToLoopStart", ("self", "x12_path", "child_path")),
    ("pyx12.map_walker", "apply_walk_errors", ("errh", "errors")),
    ("pyx12.segment", "Segment", ("seg_str", "seg_term", "ele_term", "subele_term")),
    ("pyx12.x12file", "X12Base.__init__", ("self",)),
    ("pyx12.x12file", "X12Reader._parse_segment", ("self", "seg_data")),
    ("pyx12.x12file", "X12Reader._seg_error", ("self", "err_cde", "err_str")),
    ("pyx12.x12file", "X12Reader.pop_errors", ("self",)),
    ("pyx12.x12file", "X12Reader.cleanup", ("self",)),
    ("pyx12.x12file", "X12Reader.get_seg_count", ("self",)),
    ("pyx12.x12file", "X12Reader.get_cur_line", ("self",)),
)
# Attributes of pyx12 objects we read or set (checked on real objects by the test).
PYX12_READER_ATTRIBUTES = ("seg_term", "ele_term", "subele_term", "repetition_term", "icvn", "check_837_lx")
PYX12_NODE_ATTRIBUTES = ("pos_map", "pos", "path", "id")  # loop and segment nodes, with get_path()
# The errh methods pyx12's walker and segment checks call on _Collector.
PYX12_ERRH_CALLS = ("add_seg", "seg_error", "add_ele", "ele_error", "handle_errors")


class _Collector:
    """Stands in for pyx12's err_handler: records each error against our segment index."""

    def __init__(self) -> None:
        self.errors: SetErrors = SetErrors()
        self.current = 0
        self.previous = 0
        self.current_id = ""
        self._subject = ""
        self._element: str | None = None
        self.accepted_versions: set[str] = set()
        self.accepted_versions_in = ("GS08", "ST03")

    # Called by pyx12's walker and segment validation ------------------------------------
    def add_seg(self, map_node: Any, seg_data: Any, *_: Any) -> None:
        self._subject = getattr(map_node, "id", None) or seg_data.get_seg_id()

    def seg_error(self, err_cde: str, err_str: str, err_val: Any = None, src_line: Any = None) -> None:
        where = self.previous if err_cde in _MISSING and self.previous else self.current
        subject = self._subject or self.current_id
        self.errors.append(StructuralError(where, subject, None, err_cde, "seg", err_str))
        self._subject = ""

    def add_ele(self, map_node: Any) -> None:
        self._element = getattr(map_node, "refdes", None) or getattr(map_node, "id", None)

    def ele_error(self, err_cde: str, err_str: str, bad_value: Any, refdes: str | None = None) -> None:
        element = refdes or self._element
        if err_cde == "7" and element in self.accepted_versions_in and bad_value in self.accepted_versions:
            # GS08/ST03 name an erratum we read as the guide pyx12 has (X222A2 as X222A1):
            # not an error for us.
            return
        self.errors.append(
            StructuralError(self.current, self.current_id, element, err_cde, "ele", err_str)
        )

    # Errors pyx12's reader finds (envelope, counters) ---------------------------------
    def handle_errors(self, err_list: list[tuple[str, str, str, Any, Any]]) -> None:
        for level, code, message, _value, _line in err_list:
            if (level, code) in _HANDLED_ELSEWHERE:
                continue
            self.errors.append(
                StructuralError(self.current, self.current_id, None, code, level, message)
            )


@functools.cache
def _load_map(map_file: str) -> Any:
    """Maps are read once a process: loading the 837 map takes a third of a second, and the
    walker keeps its counts in its own NodeCounter, not in the map."""
    return pyx12.map_if.load_map_file(map_file, pyx12.params.params())


def _reader(delimiters: Delimiters) -> pyx12.x12file.X12Reader:
    """A pyx12 reader with no file behind it: we only use its segment counters and checks."""
    src = pyx12.x12file.X12Reader.__new__(pyx12.x12file.X12Reader)
    pyx12.x12file.X12Base.__init__(src)
    src.seg_term = delimiters.segment
    src.ele_term = delimiters.element
    src.subele_term = delimiters.component
    src.repetition_term = delimiters.repetition
    src.icvn = "00501"
    return src


class GuideValidator:
    """Feed every segment of a file in order; read `errors` as they accumulate."""

    def __init__(self, delimiters: Delimiters) -> None:
        self._d = delimiters
        self._control = _load_map(_CONTROL_MAP)
        self._map: Any = None
        self._walker = walk_tree()
        self._src = _reader(delimiters)
        self._node: Any = self._control.getnodebypath("/ISA_LOOP/ISA")
        self._errh = _Collector()

    def take_errors(self) -> SetErrors:
        """The errors found since the last call, oldest first."""
        errors = self._errh.errors
        self._errh.errors = SetErrors()
        return errors

    def feed(self, seg: Segment, seg_id: str, group: Group | None) -> None:
        """Validate one segment; empty segments are reported by the syntax checks, not here."""
        if not seg.text.strip():
            return
        try:
            self._feed(seg, seg_id, group)
        except Exception as exc:
            # pyx12 has sharp edges: a segment that trips one is an error of that segment (so of
            # the claim or loop that holds it), not of the whole file. The walker stays where it
            # was, so the segments after it are still placed.
            if seg_id in ("ISA", "GS"):  # the guide to validate with is chosen there: nothing is safe after
                raise InputError(
                    f"the implementation-guide validator (pyx12) could not read the {seg_id}: {type(exc).__name__}",
                    code="validator", offset=seg.offset, segment=seg.index,
                ) from exc
            self._errh.errors.append(StructuralError(
                seg.index, seg_id, None, _UNREADABLE, "seg",
                f"the implementation-guide validator could not read this segment ({type(exc).__name__})",
            ))

    def _feed(self, seg: Segment, seg_id: str, group: Group | None) -> None:
        d = self._d
        errh = self._errh
        errh.previous, errh.current, errh.current_id = errh.current, seg.index, seg_id
        src = self._src
        text = seg.text
        if not text.isascii():
            # pyx12 fails on such bytes; the raw-input check (S002) reports them instead.
            text = text.encode("ascii", "replace").decode("ascii")
        if text[:1] in NOT_AN_ID and text:
            # Reported here, then read past, so the walker still places the segment (the claim
            # model reads it the same way: an indented CLM is a CLM).
            src._seg_error("1", "Segment contains a leading space" if text.startswith(" ")
                           else "Segment starts with white space or a control character")
            text = segment_id(text)
        if text.endswith(d.element):
            src._seg_error("SEG1", "Segment contains trailing element terminators")
        pseg = pyx12.segment.Segment(text, d.segment, d.element, d.component)
        src._parse_segment(pseg)
        walker = self._walker
        orig_node = self._node
        if seg_id == "ISA":
            node = self._control.getnodebypath("/ISA_LOOP/ISA")
            walker.forceWalkCounterToLoopStart("/ISA_LOOP", "/ISA_LOOP/ISA")
        elif seg_id == "GS":
            node = self._control.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
            walker.forceWalkCounterToLoopStart("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
        else:
            node, _pop, _push, walk_errors = walker.walk_errors(
                orig_node, pseg, src.get_seg_count(), src.get_cur_line(), None
            )
            apply_walk_errors(errh, walk_errors)
        if node is None:
            self._node = orig_node
            return
        if seg_id == "GS" and group is not None:
            errh.accepted_versions = {group.version.found}
            self._map = _load_map(_MAP_FILES[group.version.read_as])
            src.check_837_lx = True
            node = self._map.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
        errh.handle_errors(src.pop_errors())
        if isinstance(node, pyx12.map_if.segment_if):
            apply_segment_errors(node, pseg, errh)
        self._node = node

    def finish(self) -> None:
        """Collect what pyx12 notices only at the end of the input (missing trailers)."""
        self._src.cleanup()
        self._errh.handle_errors(self._src.pop_errors())
