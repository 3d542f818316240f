"""CPU time of the compiled validator against pyx12's validation alone, interleaved in one process.

    python bench/validator_cpu.py FILE [ROUNDS]

Each round times pyx12's x12n_document on FILE, then the compiled validator (tokenizer, envelope
reader and CompiledValidator, as the scrub runs it), both with time.process_time: on a shared,
noisy machine CPU time and interleaving keep the ratio honest. Prints the best of each and the ratio,
and the compiled run's part above the floor (tokenizer and envelope reader alone).

The compiled validator's memos of segment texts (element checks, placed segments) are emptied
before each of its rounds, as in a fresh process: otherwise every text of FILE would be a hit
from the round before, which no real run gets. Its tables and expressions stay loaded (their
cost is a fresh process's fixed cost: bench/run.py's compiled mode counts it).
"""

from __future__ import annotations

import logging
import sys
import time


def pyx12_seconds(path: str) -> float:
    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    t0 = time.process_time()
    pyx12.x12n_document.x12n_document(pyx12.params.params(), path, None, None)
    return time.process_time() - t0


def compiled_seconds(path: str, validate: bool = True) -> float:
    from scrubber.x12.envelope import EnvelopeReader
    from scrubber.x12.guide.validator import CompiledValidator
    from scrubber.x12.tokenizer import SegmentReader

    _forget_texts()
    t0 = time.process_time()
    with open(path, "rb") as source:
        reader = SegmentReader(source)
        if validate:
            validator = CompiledValidator(reader.delimiters)
            for _event in EnvelopeReader(reader, reader.delimiters, validator.feed):
                validator.take_errors()
            validator.finish()
        else:
            for _event in EnvelopeReader(reader, reader.delimiters):
                pass
    return time.process_time() - t0


def _forget_texts() -> None:
    """Empty the compiled validator's memos keyed by segment text (see the module's doc)."""
    from scrubber.x12.guide import validator

    for checker in validator._CHECKERS.values():
        checker.memo.clear()  # type: ignore[attr-defined]
    for placed in validator._PLACED.values():
        placed.clear()


def main(argv: list[str]) -> int:
    path = argv[0]
    rounds = int(argv[1]) if len(argv) > 1 else 3
    compiled_seconds(path)  # warm: compiled tables and expressions loaded, the walk's traces recorded
    base, comp, floor = [], [], []
    for _ in range(rounds):
        base.append(pyx12_seconds(path))
        comp.append(compiled_seconds(path))
        floor.append(compiled_seconds(path, validate=False))
    b, c, f = min(base), min(comp), min(floor)
    print(f"pyx12 {b:.3f} s  compiled {c:.3f} s  ratio {b / c:.1f}x  "
          f"(floor {f:.3f} s, validator's own part {c - f:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
