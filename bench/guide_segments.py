"""Micro benchmark: the compiled segment checks against pyx12's, segment by segment (issue 11 §1).

    python bench/guide_segments.py                 # 2,000 claims, best of 5 rounds
    python bench/guide_segments.py --claims 5000 --rounds 3

Writes a synthetic 837P (bench/generate.py), lets pyx12's walker place every segment at its map
node (as the scrubber drives it today), then times, over the same placed segments in file order:

- pyx12: `apply_segment_errors(node, segment, errh)` with an error handler that does nothing;
- compiled: `check_segment(rule, elements, component, repetition)`, its memo emptied at the
  start of each round (a run starts with an empty memo and fills it as it reads; the fast-path
  expressions are built once before the rounds, as a long run amortises them);
- compiled, no memo: the same checks with the memo emptied before every segment (the cost of a
  segment never seen before).

Placing the segments is not timed: that is the loop walker's work (bench/run.py's "compiled"
mode times the whole validator). The passes run interleaved, round after round; each figure is
the least CPU time (time.process_time) of the rounds; the ratios are pyx12 time / compiled time,
measured in this one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402  (bench/ is not a package)
from pyx12.map_if._segment import apply_segment_errors  # noqa: E402

import scrubber.x12.ig as ig  # noqa: E402
from scrubber.x12.envelope import EnvelopeReader  # noqa: E402
from scrubber.x12.guide.segments import SegmentRule, check_segment, compile_segments  # noqa: E402
from scrubber.x12.tokenizer import SegmentReader  # noqa: E402

_MAPS = ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml", "x12.control.00501.xml")


class _NullErrors:
    def add_ele(self, *_: Any) -> None: ...
    def seg_error(self, *_: Any) -> None: ...
    def ele_error(self, *_: Any) -> None: ...


def placed(path: Path) -> tuple[list[tuple[Any, Any, SegmentRule, list[str]]], str, str | None]:
    """(pyx12 node, pyx12 segment, compiled rule, elements) for every segment pyx12 places."""
    rules = {id(ig._load_map(name)): compile_segments(name) for name in _MAPS}
    found: list[tuple[Any, Any, SegmentRule, list[str]]] = []
    original = ig.apply_segment_errors

    def spy(node: Any, pseg: Any, errh: Any) -> bool:
        rule = rules[id(node.root)][(node.parent.get_path(), node.pos, node.path)]
        elements = [pseg.seg_id] + [c.subele_term.join(e.value for e in c.elements) for c in pseg.elements]
        found.append((node, pseg, rule, elements))
        return original(node, pseg, errh)

    ig.apply_segment_errors = spy
    try:
        with path.open("rb") as stream:
            reader = SegmentReader(stream)
            d = reader.delimiters
            validator = ig.GuideValidator(d)
            for _event in EnvelopeReader(reader, d, validator.feed):
                pass
    finally:
        ig.apply_segment_errors = original
    return found, d.component, d.repetition


def _cpu_seconds(run: Any) -> float:
    # CPU time of this process, not wall time: on a shared machine the scheduler's pauses would
    # otherwise fall on whichever pass happened to run during them.
    started = time.process_time()
    run()
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.837"
        generate.generate(args.claims, path)
        segments, component, repetition = placed(path)
    rules = list({id(r): r for _n, _p, r, _e in segments}.values())
    errh = _NullErrors()

    def pyx12_pass() -> None:
        for node, pseg, _rule, _elements in segments:
            apply_segment_errors(node, pseg, errh)

    def forget(rule: SegmentRule) -> None:
        for tables in rule.by_component.values():
            tables.memo.clear()

    def compiled_pass() -> None:
        for rule in rules:
            forget(rule)
        for _node, _pseg, rule, elements in segments:
            check_segment(rule, elements, component, repetition)

    def unmemoised_pass() -> None:
        for _node, _pseg, rule, elements in segments:
            forget(rule)
            check_segment(rule, elements, component, repetition)

    compiled_pass()  # builds the expressions: a cost of start-up, not of the segments
    pyx12_time = compiled_time = cold_time = float("inf")
    for _ in range(args.rounds):  # interleaved, so a noisy neighbour slows all three alike
        pyx12_time = min(pyx12_time, _cpu_seconds(pyx12_pass))
        compiled_time = min(compiled_time, _cpu_seconds(compiled_pass))
        cold_time = min(cold_time, _cpu_seconds(unmemoised_pass))
    n = len(segments)
    print(f"{args.claims} claims, {n} segments placed at segment nodes, best of {args.rounds} rounds")
    print(f"pyx12 apply_segment_errors  {pyx12_time:8.3f} s  {pyx12_time / n * 1e6:7.2f} µs/segment")
    print(f"compiled check_segment      {compiled_time:8.3f} s  {compiled_time / n * 1e6:7.2f} µs/segment"
          f"  ratio {pyx12_time / compiled_time:6.1f}x")
    print(f"compiled, no memo           {cold_time:8.3f} s  {cold_time / n * 1e6:7.2f} µs/segment"
          f"  ratio {pyx12_time / cold_time:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
