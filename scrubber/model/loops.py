"""The loops of a claim, and of the HL loops above claims, as the implementation guide has them
(issue 11 §5).

The claim model reads which loop a segment of a claim opens or belongs to from the compiled guide
(x12/guide/loops.py: pyx12's map, compiled), not from loop names written into the model: from the
claim loop (2300) down, each loop's own segments and the child loops each segment id opens, told
apart by their qualifier (NM101 for the 2310, 2330 and 2420 loops) as the guide tells them apart.

A segment goes where the guide puts it, as a reader of the guide would look for it: a child loop
of the loop it is in, or a segment of that loop (in any order: the model reads what the claim says,
the validator reports the order); else a loop or segment of a loop above, at a position after the
loop it leaves. A segment the guide has nowhere there (out of order, or unknown) leaves the model
where it was: what it says is not read, and the validator reports it. So does a segment whose
qualifier the guide does not know (an NM1*117 where 2010AA wants NM1*85): the validator finds no
such loop either ("segment not found").

The HL loops (2000A, 2000B, 2000C: hl_loops) are read the same way, each from its own loop down
to the 2010 loops it holds; an HL or a CLM starts the next loop or claim (TransactionReader.feed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

# The guide each kind of claim is read with (x12/versions.py reads later errata as these).
_GUIDE_OF_KIND = {"837P": "005010X222A1", "837I": "005010X223A2"}
CLAIM_LOOP = "2300"
NOWHERE = -1

# What the claim model reads of a segment, by where the guide puts it (step's second answer).
NOTHING = 0  # nowhere in the claim, or in a loop the model reads nothing of (2310A, 2320, 2430...)
CLAIM_SEGMENT = 1  # a segment of the claim loop (2300)
LINE_SEGMENT = 2  # a segment of the service line loop (2400)
DRUG_SEGMENT = 3  # a segment of the drug identification loop (2410) after its LIN
CLAIM_PROVIDER = 4  # the NM1 that opens a loop of the claim's providers (2310)
LINE_PROVIDER = 5  # the NM1 that opens a loop of the line's providers (2420)
DRUG_IDENTIFICATION = 6  # the LIN that opens 2410
# ... and in the HL loops above the claims (2000A/B/C and their 2010 loops):
PARTY = 7  # the NM1 that opens a 2010 loop (billing provider, subscriber, payer, patient)
PAYER_CLASS = 8  # the subscriber loop's SBR (2000B)
BIRTH_DATE = 9  # the DMG of a 2010 loop (the subscriber's, the patient's)
HL_LEVELS = {"20": "2000A", "22": "2000B", "23": "2000C"}  # HL03 -> the guide's HL loop


@dataclass(frozen=True, slots=True)
class _Opening:
    """A child loop, opened by its first segment."""

    loop: int
    pos: int  # the loop's position in its parent
    element: int  # the qualifier the guide tells it apart by: element (from 1), component (from 1,
    component: int  # or 0), and its codes; element 0 when the segment id alone does
    codes: frozenset[str | None]


@dataclass(slots=True)
class ClaimLoops:
    """The claim loop (2300) and the loops below it, in one guide. Loops are node numbers of the
    compiled tables; `xid` gives their ids (2300, 2310B, 2400, 2410, 2420A...)."""

    claim: int  # the 2300 loop
    line: int  # the 2400 loop (opened by LX)
    xid: list[str]
    parent: list[int]
    pos: list[int]
    opens: dict[int, dict[str, tuple[_Opening, ...]]] = field(default_factory=dict)
    own: dict[int, dict[str, int]] = field(default_factory=dict)  # segment id -> its last position
    first_id: dict[int, str] = field(default_factory=dict)  # the id of the segment that opens each loop
    # The segment ids that open loops told apart by a qualifier, with where the qualifier is (the
    # same for every loop an id opens, in the 837 guides: claim_loops checks).
    qualified: dict[str, _Opening] = field(default_factory=dict)
    # The answers of step, remembered: by loop and id (`plain`), and with the qualifier (`_memo`).
    plain: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    _memo: dict[tuple[int, str, str | None], tuple[int, int]] = field(default_factory=dict)

    @property
    def moves(self) -> frozenset[str]:
        """The segment ids that can take the model to another loop: those that open one, and a
        loop's own segments placed after one of its child loops (a segment there leaves the
        child loop). The claim model looks at no other segment of a claim (build._CLAIM_READS)."""
        found = {seg_id for opens in self.opens.values() for seg_id in opens}
        for loop, own in self.own.items():
            first_child_loop = min((o.pos for opens in self.opens[loop].values() for o in opens), default=None)
            if first_child_loop is not None:
                found.update(seg_id for seg_id, last in own.items() if last >= first_child_loop)
        return frozenset(found)

    def step(self, loop: int, seg_id: str, elements: list[str], component: str) -> tuple[int, int]:
        """The loop a segment of the claim goes to from `loop` (NOWHERE: nowhere in the claim), and
        what the model reads of it there (NOTHING, CLAIM_SEGMENT, ...)."""
        # Where a segment goes depends on the loop, its id and, for an id that opens loops told
        # apart by a qualifier, that qualifier: remembered (a few dozen answers a guide).
        spec = self.qualified.get(seg_id)
        if spec is None:
            plain = self.plain[loop]
            found = plain.get(seg_id)
            if found is None:
                if len(plain) >= _MEMO_LIMIT:  # (a file of endless unknown segment ids)
                    plain.clear()
                found = plain[seg_id] = self._read(loop, seg_id, self._step(loop, seg_id, elements, component))
            return found
        key = (loop, seg_id, _qualifier(elements, spec, component))
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _MEMO_LIMIT:  # (a file of endless odd qualifiers)
                self._memo.clear()
            found = self._memo[key] = self._read(loop, seg_id, self._step(loop, seg_id, elements, component))
        return found

    def _read(self, loop: int, seg_id: str, node: int) -> tuple[int, int]:
        """The answer of step: the loop, and what is read of the segment there."""
        if node == NOWHERE:
            return node, NOTHING
        parent = self.parent[node]
        if node != loop or seg_id == self.first_id.get(node):  # it opens the loop
            if seg_id == "NM1" and parent == self.claim:
                return node, CLAIM_PROVIDER
            if seg_id == "NM1" and parent == self.line:
                return node, LINE_PROVIDER
            if seg_id == "LIN" and parent == self.line:
                return node, DRUG_IDENTIFICATION
            return node, NOTHING
        if node == self.claim:
            return node, CLAIM_SEGMENT
        if node == self.line:
            return node, LINE_SEGMENT
        if parent == self.line and self.first_id.get(node) == "LIN":
            return node, DRUG_SEGMENT
        return node, NOTHING

    def _step(self, loop: int, seg_id: str, elements: list[str], component: str) -> int:
        at = -1  # in the loop it is in, any position: further up, after the loop it leaves
        while True:
            found = self.opens[loop].get(seg_id)
            if found is not None:
                later = [o for o in found if o.pos >= at]
                for opening in later:
                    if not opening.element or _qualifier(elements, opening, component) in opening.codes:
                        return opening.loop
                if later:
                    # A qualifier the guide does not know: the validator finds no such loop ("segment
                    # not found"), and the model reads nothing of it either.
                    return NOWHERE
            last = self.own[loop].get(seg_id)
            if last is not None and last >= at:
                return loop
            if loop == self.claim:
                return NOWHERE
            at = self.pos[loop]
            loop = self.parent[loop]


class HLLoops(ClaimLoops):
    """An HL loop (2000A/B/C, `claim` here) and the 2010 loops below it: what is read of a segment
    there (step's second answer) is PARTY, PAYER_CLASS or BIRTH_DATE."""

    def _read(self, loop: int, seg_id: str, node: int) -> tuple[int, int]:
        if node == NOWHERE:
            return node, NOTHING
        if node != loop or seg_id == self.first_id.get(node):  # it opens the loop
            return node, PARTY if seg_id == "NM1" and self.parent[node] == self.claim else NOTHING
        if seg_id == "SBR" and node == self.claim:
            return node, PAYER_CLASS
        return node, BIRTH_DATE if seg_id == "DMG" and self.parent[node] == self.claim else NOTHING


_MEMO_LIMIT = 4096


def _qualifier(elements: list[str], opening: _Opening, component: str) -> str | None:
    if opening.element >= len(elements):
        return None
    value = elements[opening.element]
    if opening.component:
        parts = value.split(component)
        return parts[opening.component - 1] if opening.component <= len(parts) else None
    return value


@functools.cache  # (the tables are package data: one per kind for the life of the process)
def claim_loops(kind: str) -> ClaimLoops:
    """The claim loops of the guide that `kind` (837P, 837I) is read with."""
    loops = _compile(kind, CLAIM_LOOP, ClaimLoops)
    loops.line = loops.opens[loops.claim]["LX"][0].loop
    return loops


@functools.cache
def hl_loops(kind: str, level: str) -> HLLoops | None:
    """The HL loop of level `level` (HL03: 20, 22, 23) in the guide `kind` is read with, and the
    loops below it (`claim` is the HL loop: see HLLoops). None for a level the guide does not
    have. Its claims and child HL loops are not read through it: an HL or a CLM starts those."""
    xid = HL_LEVELS.get(level)
    return _compile(kind, xid, HLLoops, skip=("HL", "CLM")) if xid is not None else None  # type: ignore[return-value]


def _compile(kind: str, root_xid: str, cls: type[ClaimLoops], skip: tuple[str, ...] = ()) -> ClaimLoops:
    """The tables of the loop `root_xid` and the loops below it, but those a segment of `skip` opens."""
    from ..x12.guide.loops import LOOP, SEGMENT
    from ..x12.guide.validator import load_tables
    from ..x12.structural import _MAP_FILES

    t = load_tables(_MAP_FILES[_GUIDE_OF_KIND[kind]])
    # The map holds the claim loop under each HL level that may have claims (2000B, 2000C), and
    # the 2000C loop in two places: the same loops below each, so the first serves.
    claim = next(n for n in range(len(t.kind)) if t.kind[n] == LOOP and t.xid[n] == root_xid)
    loops = cls(claim, NOWHERE, t.xid, t.parent, t.pos)
    todo = [claim]
    while todo:
        loop = todo.pop()
        kids = t.children[loop]
        opens: dict[str, list[_Opening]] = {}
        own: dict[str, int] = {}
        for number, child in enumerate(kids):
            if t.kind[child] == SEGMENT:
                if number:  # (its first segment opens the loop: it is read one level up)
                    own[t.xid[child]] = max(own.get(t.xid[child], t.pos[child]), t.pos[child])
                continue
            first = t.children[child][0] if t.children[child] else -1
            if first < 0 or t.kind[first] != SEGMENT or t.xid[first] in skip:
                continue  # (no such loop in an 837 map: a loop opens with a segment)
            match = t.match[first]
            element, component, codes = match if match is not None else (0, 0, frozenset())
            opens.setdefault(t.xid[first], []).append(_Opening(child, t.pos[child], element, component, codes))
            loops.first_id[child] = t.xid[first]
            todo.append(child)
        loops.opens[loop] = {seg_id: tuple(found) for seg_id, found in opens.items()}
        loops.plain[loop] = {}
        loops.own[loop] = own
    for opens in loops.opens.values():
        for seg_id, found in opens.items():
            for opening in found:
                if opening.element:
                    known = loops.qualified.setdefault(seg_id, opening)
                    if (known.element, known.component) != (opening.element, opening.component):
                        raise ValueError(f"{seg_id} opens loops told apart by different elements")
    return loops
