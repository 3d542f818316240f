"""The loop state machine: where each segment goes in the guide, and what went missing on the way.

This is pyx12's map walker (pyx12/map_walker.py, walk_tree.walk_errors) over the compiled tables
of loops.py, with the same decisions in the same order, so that it reports the same errors:

- from the node of the last segment, scan its loop's children at or after that node's position,
  then pop to the parent loop and scan from the popped loop's position, up to the map's root;
- a segment child matches on its id and, where the guide tells siblings apart by a qualifier, on
  that code (is_match); a matching segment that starts the loop being scanned re-enters that loop;
- a child loop matches when its first segment does (through wrapper loops whose first child is a
  loop); entering a loop resets the counts below it and counts the loop (code 4 past its repeat);
- a required segment not yet counted, passed on the way, is pending "3" (as is a required loop
  not yet entered), reported once the walk has moved to another position (_flush_mandatory_segs);
- a placed segment is counted (code 5 past its max use) and checked for usage N (code 2);
- no match up to the root: code 1, the segment stays unplaced and the walk stays where it was.

What makes it fast, with the same results: counts are kept in a dict keyed by the node's path
string with the instance of the loop that holds it, so resetting a loop is bumping the instance
of that loop and the loops below it (not a scan of every count); the children worth looking at for
one segment id at one position of one loop are computed once and memoised (a child that neither
can match nor has a side effect when it does not match is skipped); no path objects, no segment
objects.
"""

from __future__ import annotations

from ...bounded import kept
from .loops import LOOP, MAXINT, ROOT, SEGMENT, GuideTables

# What each loop resets (`Walker._below`), per set of loop paths known: it depends on nothing
# else, and a walker is made for each transaction set in the workers (sorting the paths below
# each loop again cost a tenth of a worker's time on a file of one-claim sets). A few maps a
# process: 8 sets of paths kept, bounded all the same.
_BELOW: dict[frozenset[str], dict[str, tuple[str, ...]]] = {}


class Walker:
    """The walk state of one file: the counts (pyx12's NodeCounter) and the tables in use."""

    def __init__(self, component: str = ":") -> None:
        self._component = component  # the file's component separator (for 01-1 qualifiers)
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (count, instance of its loop)
        self._instance: dict[str, int] = {}  # loop path -> its instance (0 when never reset)
        self._clock = 0
        self._loop_paths: set[str] = set()
        self._below: dict[str, tuple[str, ...]] = {}  # loop path -> it and the loop paths under it
        self.pending: list[tuple[str, str, int]] = []  # (code, message, map node or -1)
        # The trace of the last walk: (node found, counting steps, the inlined form of the two
        # common ones or None). `follow` walks it again from the same node for the same segment.
        self.trace: tuple | None = None
        self._missing: list[tuple[int, str, str]] = []  # (segment node, code, message)
        self.t: GuideTables | None = None
        self._candidates: dict[tuple[int, int, str], tuple[int, ...]] = {}
        self._traces: dict[tuple, tuple[int, tuple[tuple[int, int], ...]]] = {}
        self._qualifier_keys: dict[str, tuple] = {}  # seg id -> its key plan (_key_plan)
        self._bounded: frozenset[str] = frozenset()

    def use(self, tables: GuideTables) -> None:
        """Walk with these tables from now on (the map changes at a GS). The counts are kept: they
        are keyed by path, as pyx12's are, and the 837 maps share the control map's paths."""
        if self.t is tables:
            return
        self.t = tables
        self._candidates, self._traces, self._qualifier_keys, self._bounded = _memo_of(tables)
        new = set(tables.loop_paths) - self._loop_paths
        if new:
            self._loop_paths |= new
            self._below = kept(_BELOW, frozenset(self._loop_paths), dict, 8)

    # The counter (pyx12's NodeCounter) ------------------------------------------------------
    def count(self, node: int) -> int:
        t = self.t
        v = self._counts.get(t.path[node])
        if v is None or v[1] != self._instance.get(t.parent_path[node], 0):
            return 0
        return v[0]

    def _increment(self, key: str, parent: str) -> int:
        instance = self._instance.get(parent, 0)
        v = self._counts.get(key)
        n = v[0] + 1 if v is not None and v[1] == instance else 1
        self._counts[key] = (n, instance)
        return n

    def _reset(self, loop_path: str) -> None:
        """NodeCounter.reset_to_node: forget every count below the loop (not the loop's own)."""
        below = self._below.get(loop_path)
        if below is None:
            prefix = loop_path + "/"
            below = (loop_path, *sorted(p for p in self._loop_paths if p.startswith(prefix)))
            self._below[loop_path] = below
        self._clock += 1
        clock = self._clock
        instance = self._instance
        for p in below:
            instance[p] = clock

    def force_loop_start(self, loop_path: str, seg_path: str) -> None:
        """walk_tree.forceWalkCounterToLoopStart (ISA and GS are placed directly)."""
        self._reset(loop_path)
        parent = loop_path.rsplit("/", 1)[0] or "/"
        self._increment(loop_path, parent)
        self._increment(seg_path, loop_path)

    # The walk -------------------------------------------------------------------------------
    def walk(self, node: int, seg_id: str, parts: list[str]) -> int:
        """walk_tree.walk_errors: the node the segment goes at (-1 when none); the errors found
        on the way are in `pending`.

        Which way the walk goes depends only on the start node, the segment id and the values
        the guide tells siblings apart by (the qualifiers): the counts decide only which errors
        are reported on the way (a required node not counted yet, a repeat exceeded). So the
        first walk from a node for such a segment is recorded as a trace of its counting steps,
        and later walks replay the trace: a dict look-up and a few counter updates."""
        plan = self._qualifier_keys.get(seg_id)
        if plan is None:
            plan = self._qualifier_keys[seg_id] = _key_plan(_qualifier_keys(self.t, seg_id))
        if not plan:
            key: tuple = (node, seg_id)
        elif len(plan) == 2:
            # The qualifier as found (its first component for a composite): a trace recorded
            # for a value is right for it whatever pyx12 would strip of it.
            element, component = plan
            try:
                v: str | None = parts[element]
            except IndexError:
                v = None
            else:
                if component:
                    v = v.partition(self._component)[0]
            key = (node, seg_id, v)
        else:
            self._parts = parts
            key = (node, seg_id, *[self._qualifier(e, c) for e, c in plan[0]])
        trace = self._traces.get(key)
        if trace is not None:
            self.trace = trace
            self._parts = parts  # (a trace that places nothing says what it did not place)
            return self.follow(trace, seg_id)
        if self.pending:
            self.pending = []
        if self._missing:
            self._missing = []
        self._seg_id = seg_id
        self._parts = parts
        self._rec = ops = []
        try:
            found = self._walk(node)
        finally:
            self._rec = None
        if len(self._traces) >= _MAX_TRACES:  # a hostile file with endless odd qualifiers
            self._traces.clear()
        t = self.t
        # Steps that cannot report anything are left out: the start node and the loops around
        # it were counted when the walk went there (the start node by the last walk, each loop
        # when it was entered, after any reset above it), and a walk resets nothing before its
        # last steps, so "missing" checks of those always pass.
        around = _around(t, node)
        ops = [(op, n) for op, n in ops
               if not ((op == _MISSING_SEG and n == node) or (op == _MISSING_LOOP and n in around))]
        # each step with the counter key of its node and of the loop holding it, looked up once
        steps = tuple((op, n, t.path[n], t.parent_path[n]) for op, n in ops)
        fast = None
        if len(steps) == 1 and steps[0][0] == _MATCH and t.usage[found] != "N":
            # A count past 1 is never read when no segment node with this counter key (pyx12
            # shares one between same-id nodes of a loop) has a max use: then it stays at 1.
            fast = (False, steps[0][2], steps[0][3], t.max_repeat[found], t.path[found] in self._bounded)
        elif len(steps) == 2 and steps[0][0] == _ENTER and steps[1][0] == _FIRST and t.usage[steps[0][1]] in "RS":
            loop, first = steps[0][1], steps[1][1]
            fast = (True, loop, t.path[loop], t.parent_path[loop], t.max_repeat[loop],
                    t.path[first], t.parent_path[first])
        self._traces[key] = self.trace = (found, steps, fast)
        return found

    def follow(self, trace: tuple, seg_id: str) -> int:
        """Walk again the way `trace` (a walk's `trace`, from the node it started at, for a
        segment with this id and the same qualifiers) went: the same node, the counts and the
        errors of this time. The two common traces (a segment placed; a loop entered at its first
        segment) are inlined: they are most of the work."""
        if self.pending:
            self.pending = []
        if self._missing:
            self._missing = []
        fast = trace[2]
        if fast is None:
            self._seg_id = seg_id
            return self._replay(trace)
        counts = self._counts
        instances = self._instance
        if fast[0]:
            # The other common trace: a loop (used R or S) entered at its first segment:
            # _check_loop_usage and the _FIRST step of _replay, inlined.
            _, loop, path, parent, max_repeat, first_path, first_parent = fast
            below = self._below.get(path)
            if below is None:
                self._reset(path)
            else:
                self._clock += 1
                clock = self._clock
                for p in below:
                    instances[p] = clock
            instance = instances.get(parent, 0)
            v = counts.get(path)
            n = v[0] + 1 if v is not None and v[1] == instance else 1
            counts[path] = (n, instance)
            if n > max_repeat:
                self.pending.append(("4", f"Loop {self.t.xid[loop]} exceeded max count.  Found {n}, should "
                                          f"have {max_repeat}", loop))
            instance = instances.get(first_parent, 0)
            v = counts.get(first_path)
            counts[first_path] = (v[0] + 1 if v is not None and v[1] == instance else 1, instance)
            return trace[0]
        # The most common trace: one segment placed, nothing looked for on the way.
        _, path, parent, max_repeat, exact = fast
        instance = instances.get(parent, 0)
        v = counts.get(path)
        if v is None or v[1] != instance:
            counts[path] = (1, instance)
        elif exact:
            n = v[0] + 1
            counts[path] = (n, instance)
            if n > max_repeat:
                self._seg_id = seg_id
                self._check_seg_usage(trace[0])
        return trace[0]

    def _qualifier(self, element: int, component: int) -> str | None:
        """The value pyx12's is_match reads: element `element` (its first component when
        `component` is 1), None when the segment has no such element."""
        parts = self._parts
        if element >= len(parts):
            return None
        v = parts[element].rstrip(self._component)
        if component:
            subs = v.split(self._component)
            return subs[component - 1] if component <= len(subs) else None
        return v

    def _walk(self, node: int) -> int:
        t = self.t
        orig = node
        pos = t.pos[node]
        loop = node if t.kind[node] != SEGMENT else t.parent[node]
        while True:
            found = self._scan(loop, pos, orig)
            if found is not None:
                return found
            if t.kind[loop] == ROOT:
                self._rec.append((_NOT_FOUND, orig))
                self._not_found(orig)
                return -1
            pos = t.pos[loop]
            loop = t.parent[loop]

    def _replay(self, trace: tuple) -> int:
        """Run the counting steps a walk recorded (see walk). The two common steps (a segment
        placed, a required segment looked for) are inlined: they are most of the work."""
        found, ops, _fast = trace
        counts = self._counts
        instances = self._instance
        for op, node, path, parent in ops:
            if op == _MATCH:
                instance = instances.get(parent, 0)
                v = counts.get(path)
                n = v[0] + 1 if v is not None and v[1] == instance else 1
                counts[path] = (n, instance)
                t = self.t
                if n > t.max_repeat[node] or t.usage[node] == "N":
                    self._check_seg_usage(node)
                if self._missing:
                    eq = t.eq_key[node]
                    self._missing = [m for m in self._missing if t.eq_key[m[0]] != eq]
                    self._flush_missing(t.pos[node])
            elif op == _MISSING_SEG:
                v = counts.get(path)
                if v is None or v[1] != instances.get(parent, 0):  # count(node) < 1
                    self._missing_segment(node)
            elif op == _ENTER:
                self._check_loop_usage(node)
            elif op == _FIRST:
                t = self.t
                self._increment(t.path[node], t.parent_path[node])
                self._flush_missing(None)
            elif op == _MISSING_LOOP:
                v = counts.get(path)
                if v is None or v[1] != instances.get(parent, 0):
                    self._missing_loop(node)
            else:
                self._not_found(node)
        return found

    def _is_match(self, node: int) -> bool:
        """segment_if.is_match: the id, and the qualifier where the guide has one."""
        t = self.t
        if t.xid[node] != self._seg_id:
            return False
        key = t.match[node]
        if key is None:
            return True
        element, component, codes = key
        return self._qualifier(element, component) in codes

    def _scan(self, loop: int, pos: int, orig: int) -> int | None:
        t = self.t
        key = (loop, pos, self._seg_id)
        children = self._candidates.get(key)
        if children is None:
            if len(self._candidates) >= _MAX_TRACES:  # a hostile file with endless odd segment ids
                self._candidates.clear()
            children = self._candidates[key] = _filter(t, loop, pos, self._seg_id)
        kind = t.kind
        rec = self._rec
        for child in children:
            if kind[child] == SEGMENT:
                if self._is_match(child):
                    if kind[loop] == LOOP and self._is_loop_match(loop):
                        return self._goto_seg_match(loop)
                    rec.append((_MATCH, child))
                    self._matched(child)
                    return child
                if t.usage[child] == "R":
                    rec.append((_MISSING_SEG, child))
                    if self.count(child) < 1:
                        self._missing_segment(child)
            elif self._is_loop_match(child):
                return self._goto_seg_match(child)
        return None

    def _matched(self, child: int) -> None:
        """A segment placed at `child` (not entering a loop): count it, check its usage, and
        report what went missing before its position."""
        t = self.t
        self._increment(t.path[child], t.parent_path[child])
        self._check_seg_usage(child)
        if self._missing:
            eq = t.eq_key[child]
            self._missing = [m for m in self._missing if t.eq_key[m[0]] != eq]
            self._flush_missing(t.pos[child])

    def _missing_segment(self, child: int) -> None:
        t = self.t
        self._missing.append((child, "3", f'Mandatory segment "{t.name[child]}" ({t.xid[child]}) missing'))

    def _missing_loop(self, loop: int) -> None:
        t = self.t
        first = t.children[loop][0]
        self._missing.append((first, "3", f'Mandatory loop "{t.name[loop]}" ({t.xid[loop]}) missing'))

    def _is_loop_match(self, loop: int) -> bool:
        t = self.t
        kids = t.children[loop]
        if not kids:
            return False
        first = kids[0]
        if t.kind[first] == LOOP:
            return any(t.kind[c] == LOOP and self._is_loop_match(c) for c in kids)
        if self._is_match(first):
            return True
        if t.usage[loop] == "R":
            self._rec.append((_MISSING_LOOP, loop))
            if self.count(loop) < 1:
                self._missing_loop(loop)
        return False

    def _goto_seg_match(self, loop: int) -> int:
        """The segment node the walk enters `loop` at (-1 when none: pyx12 then returns no node)."""
        t = self.t
        kids = t.children[loop]
        first = kids[0] if kids else -1
        if first >= 0 and t.kind[first] == SEGMENT and self._is_match(first):
            self._rec.append((_ENTER, loop))
            self._check_loop_usage(loop)
            self._rec.append((_FIRST, first))
            self._increment(t.path[first], t.parent_path[first])
            self._flush_missing(None)
            return first
        for child in kids:
            if t.kind[child] != LOOP:
                continue
            found = self._goto_seg_match(child)
            if found >= 0:
                return found
        return -1

    def _check_loop_usage(self, loop: int) -> None:
        t = self.t
        usage = t.usage[loop]
        if usage == "N":
            self.pending.append(("2", f"Loop {t.xid[loop]} found but marked as not used", -1))
        elif usage in ("R", "S"):
            path = t.path[loop]
            self._reset(path)
            n = self._increment(path, t.parent_path[loop])
            if n > t.max_repeat[loop]:
                self.pending.append(("4", f"Loop {t.xid[loop]} exceeded max count.  Found {n}, should have "
                                          f"{t.max_repeat[loop]}", loop))
        else:
            raise ValueError(f"Loop usage must be R, S, or N (got {usage!r})")

    def _check_seg_usage(self, seg: int) -> None:
        t = self.t
        usage = t.usage[seg]
        if usage == "N":
            self.pending.append(("2", f"Segment {t.xid[seg]} found but marked as not used", -1))
        elif usage in ("R", "S"):
            n = self.count(seg)
            if n > t.max_repeat[seg]:
                self.pending.append(("5", f"Segment {self._seg_id} exceeded max count.  Found {n}, should have "
                                          f"{t.max_repeat[seg]}", seg))
        else:
            raise ValueError(f"Segment usage must be R, S, or N (got {usage!r})")

    def _flush_missing(self, pos: int | None) -> None:
        if not self._missing:
            return
        t = self.t
        keep = []
        for m in self._missing:
            if t.pos[m[0]] != pos:
                self.pending.append((m[1], m[2], m[0]))
            else:
                keep.append(m)
        self._missing = keep

    def _not_found(self, orig: int) -> None:
        parts = self._parts
        if self._seg_id == "HL":
            shown = "*".join(parts)
        else:
            shown = f"{self._seg_id}*{parts[1].rstrip(self._component) if len(parts) > 1 else None}"
        self.pending.append(("1", f"Segment {shown} not found.  Started at {self.t.path[orig]}", orig))

    _seg_id = ""
    _parts: list[str]
    _rec: list[tuple[int, int]] | None = None


# The counting steps of a walk's trace.
_MATCH, _MISSING_SEG, _ENTER, _FIRST, _MISSING_LOOP, _NOT_FOUND = range(6)
_MAX_TRACES = 100_000


def _around(t: GuideTables, node: int) -> frozenset[int]:
    """The loops that hold a node, up to the map's root."""
    loops = []
    parent = t.parent[node]
    while parent >= 0:
        loops.append(parent)
        parent = t.parent[parent]
    return frozenset(loops)


def _qualifier_keys(t: GuideTables, seg_id: str) -> tuple[tuple[int, int], ...]:
    """The (element, component) positions the nodes with this id are told apart by."""
    keys = {(m[0], m[1]) for i, m in enumerate(t.match) if m is not None and t.xid[i] == seg_id}
    return tuple(sorted(keys))


def _key_plan(keys: tuple[tuple[int, int], ...]) -> tuple:
    """How walk builds its trace key for a segment id, decided once: () for no qualifier,
    (element, 1 if its first component) for the common single one, (keys,) for the others."""
    if not keys:
        return ()
    if len(keys) == 1 and keys[0][1] <= 1:
        return keys[0]
    return (keys,)


def _filter(t: GuideTables, loop: int, pos: int, seg_id: str) -> tuple[int, ...]:
    """The children of `loop` at or after `pos` that matter to a segment with this id: those that
    may match it, and those that act when they do not (a required segment or loop is noted
    missing; a wrapper loop looks at its own child loops). The others are skipped as pyx12 would
    pass them: no match, no side effect."""
    out = []
    for child in t.children[loop]:
        if t.pos[child] < pos:
            continue
        if t.kind[child] == SEGMENT:
            if t.xid[child] == seg_id or t.usage[child] == "R":
                out.append(child)
        else:
            kids = t.children[child]
            if not kids:
                continue
            if t.kind[kids[0]] == LOOP or t.usage[child] == "R" or t.xid[kids[0]] == seg_id:
                out.append(child)
    return tuple(out)


_MEMO: dict[int, tuple[GuideTables, dict, dict, dict, frozenset[str]]] = {}


def _memo_of(tables: GuideTables) -> tuple[dict, dict, dict, frozenset[str]]:
    """The memos of the walks over one map's tables (the children worth scanning, the traces,
    the qualifier positions), shared by every walk over those tables. The entry keeps the
    tables alive, so that the id it is keyed by stays theirs."""
    entry = _MEMO.get(id(tables))
    if entry is None:
        # the counter keys of segments with a max use: their counts must be exact
        bounded = frozenset(tables.path[i] for i, kind in enumerate(tables.kind)
                            if kind == SEGMENT and tables.max_repeat[i] < MAXINT)
        entry = _MEMO[id(tables)] = (tables, {}, {}, {}, bounded)
    return entry[1], entry[2], entry[3], entry[4]
