"""The loop tables of one implementation guide, compiled from a pyx12 map with lxml.

A pyx12 map (837.5010.X222.A1.xml, 837Q3.I.5010.X223.A1.xml, x12.control.00501.xml) is a tree of
loops and segments, each with a position (`pos`), a usage (R/S/N) and a repeat (`max_use` for a
segment, `repeat` for a loop). The tables keep exactly what pyx12's map walker reads of it:

- every loop's children in the order the walker scans them (by position; at one position the
  loops before the segments, in document order: what pyx12's `pos_map` gives),
- every node's counter key (its path as pyx12's `get_path()` builds it, with the `[qualifier]`
  pyx12 adds to segments that share a position) and the key of the loop that holds it,
- for a segment, how the walker tells it apart from a sibling with the same id (`is_match`: the
  element and code list pyx12's `_resolve_unique_key_field` picks: element 01 when it is a
  required ID element with codes, ENT02, the CTX 01-1 composite, an ID composite's 01-1, HL03).

The tables are plain tuples and lists of ints and strings: they pickle (see cache.py) and a walk
reads them with list indexing, no objects per node.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lxml is imported where a map is compiled (a cache miss), not by every run: 6-10 ms
    from lxml import etree


# Bump when the tables' shape or meaning changes: the cache keys on it.
COMPILER_VERSION = 2

MAXINT = 2**31 - 1  # pyx12's "no limit" (>1 or no repeat given)

ROOT, LOOP, SEGMENT = 0, 1, 2


@dataclass(slots=True)
class GuideTables:
    """One map, compiled. Node 0 is the map's root; every list is indexed by node number."""

    map_file: str
    kind: list[int]  # ROOT, LOOP or SEGMENT
    xid: list[str]  # the loop or segment id
    name: list[str]
    parent: list[int]  # the loop (or root) that holds the node; -1 for the root
    pos: list[int]
    usage: list[str]
    max_repeat: list[int]  # max_use of a segment, repeat of a loop
    path: list[str]  # pyx12's get_path(): also the key of the node's counter
    parent_path: list[str]  # path of the holding loop ("/" for the root's children)
    eq_key: list[tuple[str, str]]  # pyx12 compares nodes by (id, parent's id)
    children: list[tuple[int, ...]]  # scan order: by pos, loops before segments at one pos
    # is_match: (element index from 1, component index from 1 or 0, codes) or None (id alone)
    match: list[tuple[int, int, frozenset[str | None]] | None]
    # For each segment id, the segment nodes with that id (to place ISA and GS directly).
    by_path: dict[str, int]
    # Loop paths, for the counter resets.
    loop_paths: tuple[str, ...]

    def first_node(self, loop: int) -> int:
        kids = self.children[loop]
        return kids[0] if kids else -1


@functools.cache  # (package data: the same path for the life of the process)
def map_path(map_file: str) -> Path:
    """The file of one of pyx12's maps (they ship inside the package)."""
    if map_file != Path(map_file).name:
        raise ValueError(f"not a map file name: {map_file!r}")
    return Path(str(resources.files("pyx12").joinpath("map", map_file)))


def _text(elem: etree._Element, tag: str) -> str | None:
    """pyx12 reads a property from an attribute, else from a child element."""
    value = elem.get(tag)
    if value:
        return value
    return elem.findtext(tag)


def _data_types(map_dir: Path) -> dict[str, str]:
    """Element number -> data type, from pyx12's dataele.xml (what its element nodes resolve)."""
    from lxml import etree
    tree = etree.parse(str(map_dir / "dataele.xml"))
    return {e.get("ele_num"): e.get("data_type") for e in tree.getroot().iter("data_ele")}


class _Compiler:
    def __init__(self, map_file: str) -> None:
        self.map_file = map_file
        self.file = map_path(map_file)
        self.types = _data_types(self.file.parent)
        t = GuideTables(map_file, [], [], [], [], [], [], [], [], [], [], [], [], {}, ())
        self.t = t

    def compile(self) -> GuideTables:
        from lxml import etree
        root = etree.parse(str(self.file)).getroot()
        t = self.t
        self._add(ROOT, root.get("xid") or "", "", -1, 0, "R", 1, "/", "", ("", ""), None)
        self._children(0, root, "/")
        t.loop_paths = tuple(t.path[i] for i, k in enumerate(t.kind) if k == LOOP)
        return t

    def _add(self, kind: int, xid: str, name: str, parent: int, pos: int, usage: str, max_repeat: int,
             path: str, parent_path: str, eq_key: tuple[str, str],
             match: tuple[int, int, frozenset[str | None]] | None) -> int:
        t = self.t
        t.kind.append(kind)
        t.xid.append(xid)
        t.name.append(name)
        t.parent.append(parent)
        t.pos.append(pos)
        t.usage.append(usage)
        t.max_repeat.append(max_repeat)
        t.path.append(path)
        t.parent_path.append(parent_path)
        t.eq_key.append(eq_key)
        t.children.append(())
        t.match.append(match)
        index = len(t.kind) - 1
        t.by_path.setdefault(path, index)
        return index

    def _children(self, node: int, elem: etree._Element, path: str) -> None:
        """Loops first, then segments, each in document order, then sorted by position (stable):
        pyx12's pos_map keeps that order at one position."""
        t = self.t
        prefix = "" if path == "/" else path
        entries = [(int(_text(child, "pos") or ""), child, True) for child in elem.findall("loop")]
        entries += [(int(_text(child, "pos") or ""), child, False) for child in elem.findall("segment")]
        entries.sort(key=lambda e: e[0])
        shared = {p for p in (e[0] for e in entries) if sum(1 for e in entries if e[0] == p) > 1}
        parent_id = t.xid[node]
        kids: list[int] = []
        for pos, child, is_loop in entries:
            xid = child.get("xid") or ""
            name = _text(child, "name") or ""
            usage = _text(child, "usage") or ""
            if is_loop:
                repeat = _text(child, "repeat")
                child_path = prefix + "/" + xid
                index = self._add(LOOP, xid, name, node, pos, usage, _repeat(repeat), child_path, path,
                                  (xid, parent_id), None)
                kids.append(index)
                self._children(index, child, child_path)
            else:
                elements = self._elements(child)
                suffix = ""
                if pos in shared and node != 0:  # pyx12 renames inside loops only
                    qualifier = self._guess_unique_key(xid, elements)
                    if qualifier is not None:
                        suffix = "[" + (qualifier[0] or "") + "]"
                seg_path = prefix + "/" + xid + suffix
                index = self._add(SEGMENT, xid, name, node, pos, usage, _repeat(_text(child, "max_use")),
                                  seg_path, path, (xid, parent_id), self._match_key(xid, elements))
                kids.append(index)
        t.children[node] = tuple(kids)

    def _elements(self, seg: etree._Element) -> list[tuple[str, str | None, str | None, list[str | None], list]]:
        """A segment's elements and composites by sequence: (tag, data type, usage, codes, composite's
        elements as the same tuples)."""
        by_seq: dict[int, etree._Element] = {}
        for e in seg.findall("element"):
            by_seq[int(_text(e, "seq") or "")] = e
        for e in seg.findall("composite"):
            by_seq[int(_text(e, "seq") or "")] = e
        out = []
        for seq in sorted(by_seq):
            e = by_seq[seq]
            if e.tag == "element":
                out.append(self._element(e))
            else:
                subs = [self._element(s) for s in e.findall("element")]
                out.append(("composite", None, _text(e, "usage"), [], subs))
        return out

    def _element(self, e: etree._Element) -> tuple[str, str | None, str | None, list[str | None], list]:
        data_ele = _text(e, "data_ele")
        data_type = self.types.get(data_ele) if data_ele else None
        codes: list[str | None] = []
        v = e.find("valid_codes")
        if v is not None:
            codes = [c.text for c in v.findall("code")]
        return ("element", data_type, _text(e, "usage"), codes, [])

    @staticmethod
    def _match_key(seg_id: str, elements: list) -> tuple[int, int, frozenset[str | None]] | None:
        """pyx12's _resolve_unique_key_field(with_qual=False)."""
        c0 = elements[0] if len(elements) > 0 else None
        c1 = elements[1] if len(elements) > 1 else None
        c2 = elements[2] if len(elements) > 2 else None
        if c0 and c0[0] == "element" and c0[1] == "ID" and c0[2] == "R" and c0[3]:
            return (1, 0, frozenset(c0[3]))
        if seg_id == "ENT" and c1 and c1[0] == "element" and c1[1] == "ID" and c1[3]:
            return (2, 0, frozenset(c1[3]))
        if seg_id == "CTX" and c0 and c0[0] == "composite" and c0[4][0][1] == "AN" and c0[4][0][3]:
            return (1, 1, frozenset(c0[4][0][3]))
        if c0 and c0[0] == "composite" and c0[4][0][1] == "ID" and c0[4][0][3]:
            return (1, 1, frozenset(c0[4][0][3]))
        if seg_id == "HL" and c2 and c2[0] == "element" and c2[3]:
            return (3, 0, frozenset(c2[3]))
        return None

    @staticmethod
    def _guess_unique_key(seg_id: str, elements: list) -> list[str | None] | None:
        """pyx12's guess_unique_key_id_element: the codes whose first names the segment's path."""
        c0 = elements[0] if len(elements) > 0 else None
        c1 = elements[1] if len(elements) > 1 else None
        c2 = elements[2] if len(elements) > 2 else None
        if c0 and c0[0] == "element" and c0[1] == "ID" and c0[3]:
            return c0[3]
        if seg_id == "ENT" and c1 and c1[0] == "element" and c1[1] == "ID" and c1[3]:
            return c1[3]
        if c0 and c0[0] == "composite" and c0[4][0][1] == "ID" and c0[4][0][3]:
            return c0[4][0][3]
        if seg_id == "HL" and c2 and c2[0] == "element" and c2[3]:
            return c2[3]
        return None


def _repeat(value: str | None) -> int:
    if value is None or value in (">1", "&gt;1"):
        return MAXINT
    return int(value)


def compile_loops(map_file: str) -> GuideTables:
    """Compile one of pyx12's maps (a file name in its map folder). Pure and deterministic."""
    return _Compiler(map_file).compile()
