"""The compiled validator against pyx12's (issue 11 §2): the same findings (segment, segment id,
element, code, level, in the same order) on every corpus file, sample, fuzzing seed and 10,000
seeded mutations of them, or a difference listed in scrubber.x12.guide.differences (and the
README); the same disposition for every claim, and the same 999 and 277CA, whichever validator
the scrub runs with."""

from __future__ import annotations

import datetime as dt
import io
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, TODAY, corpus_files
from fuzz import mutate, seeds
from guide_run import both

import scrubber
from scrubber.output.ack277 import Ack277CA
from scrubber.output.ack999 import Ack999
from scrubber.output.sink import ScrubbedClaim, Sink
from scrubber.x12.guide.differences import DIFFERENCES, explained

FILES = sorted(SAMPLES.glob("*.837")) + corpus_files()
CRASH_SEEDS = sorted(p for p in (Path(seeds.__file__).parent / "crashes").glob("*") if p.is_file())
# 10 chunks of 1,000 mutated inputs. Seeds of at most SEED_SIZE bytes, mutated files cut at
# MAX_SIZE: pyx12's walker, the slow side, takes about 0.3 ms a segment, and the test should
# stay within a few minutes on a busy 2-core machine (README: "The compiled validator").
CHUNKS, PER_CHUNK = 10, 1_000
SEED_SIZE = MAX_SIZE = 1_600
SMALL = [data for data in seeds.mutable_seeds() if len(data) <= SEED_SIZE]
_CREATED = dt.datetime(2026, 11, 27, 9, 30)


def _check_same(data: bytes, what: str) -> None:
    theirs, ours = both(data)
    if ours == theirs:
        return
    pyx12_only = list((Counter(theirs) - Counter(ours)).elements())
    ours_only = list((Counter(ours) - Counter(theirs)).elements())
    if pyx12_only or ours_only:
        difference = explained(pyx12_only, ours_only, list((Counter(theirs) & Counter(ours)).elements()))
        assert difference is not None, (
            f"{what}: the validators differ and no listed difference explains it:\n"
            f"  pyx12 only: {pyx12_only}\n  compiled only: {ours_only}")
    else:
        pytest.fail(f"{what}: the same findings in another order:\n  pyx12: {theirs}\n  compiled: {ours}")


@pytest.mark.parametrize("path", FILES + CRASH_SEEDS, ids=lambda p: p.name)
def test_same_findings_on_every_file(path):
    _check_same(path.read_bytes(), path.name)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_same_findings_on_mutated_inputs(chunk):
    rng = random.Random(1100 + chunk)
    for i in range(PER_CHUNK):
        data = mutate.mutate(rng.choice(SMALL), rng, SMALL, max_size=MAX_SIZE)
        _check_same(data, f"mutation {chunk}/{i} (seed {1100 + chunk})")


def test_the_mutations_reach_the_walker_with_errors():
    """The mutated inputs are worth comparing: most reach the guide and many have findings."""
    rng = random.Random(1100)
    kinds = Counter()
    for _ in range(200):
        theirs, _ours = both(mutate.mutate(rng.choice(SMALL), rng, SMALL, max_size=MAX_SIZE))
        kinds["refused" if theirs and theirs[-1][0] == "refused" else "read"] += 1
        kinds.update(f[3] for f in theirs if f[0] != "refused")
    assert kinds["read"] > 100, kinds
    assert {"1", "3", "5", "8"} <= set(kinds), kinds


# -- the whole scrub with each validator ----------------------------------------------------

class _Dispositions(Sink):
    def __init__(self) -> None:
        self.claims: list[tuple[str, str]] = []

    def claim(self, item: ScrubbedClaim) -> None:
        self.claims.append((item.result.claim.id, item.result.disposition))


def _scrub(data: bytes, validator: str) -> tuple[list[tuple[str, str]], bytes, bytes] | str:
    dispositions, out999, out277 = _Dispositions(), io.BytesIO(), io.BytesIO()
    sinks = [Ack999(out999, created=_CREATED), Ack277CA(out277, created=_CREATED), dispositions]
    try:
        scrubber.scrub_stream(io.BytesIO(data), scrubber.load_rules(), sinks, run=scrubber.RunContext.new(TODAY),
                              validator=validator)
    except scrubber.InputError as exc:
        return f"refused: {exc.code}"
    return dispositions.claims, out999.getvalue(), out277.getvalue()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_dispositions_999_and_277ca_whichever_validator(path):
    data = path.read_bytes()
    assert _scrub(data, "compiled") == _scrub(data, "pyx12")


def test_the_default_scrub_uses_the_compiled_validator(monkeypatch):
    """The 999 and 277CA are built from the compiled validator's errors unless told otherwise."""
    import scrubber.x12.guide.validator as compiled_module

    fed = []
    real = compiled_module.CompiledValidator.feed

    def spy(self, seg, seg_id, group):
        fed.append(seg_id)
        return real(self, seg, seg_id, group)

    monkeypatch.setattr(compiled_module.CompiledValidator, "feed", spy)
    out999 = io.BytesIO()
    scrubber.scrub_stream(io.BytesIO((SAMPLES / "defects_837p.837").read_bytes()), scrubber.load_rules(),
                          [Ack999(out999, created=_CREATED)], run=scrubber.RunContext.new(TODAY))
    assert fed[:3] == ["ISA", "GS", "ST"]
    assert b"IK3" in out999.getvalue()


# -- the list of differences ------------------------------------------------------------------

def test_the_readme_lists_every_difference_of_the_table():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The compiled validator", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^- \*\*(.+?)\*\*", section.split("### Differences from pyx12", 1)[1], re.M))
    assert listed == {d.name for d in DIFFERENCES}
    for d in DIFFERENCES:
        assert d.guide and d.pyx12 and d.ours, d.name


@pytest.mark.parametrize(("old", "new", "name"), [
    (b"DTP*472*D8*20261102~", b"DTP*472*RD8*20261102-20261103-20261104~", "A date range with more than one hyphen"),
    (b"CLM*P-OK-MEDICARE-JW*", None, "A composite with more components than its definition"),
    (b"HL*2*1*22*0~", b"HL*2*9*22*0~", "An HL02 that names no open level"),
])
def test_each_listed_difference_is_met_by_a_real_input_and_explained(old, new, name):
    """Each entry of the table is a difference that really happens (on the clean sample, changed at
    one segment), and the entry explains exactly it; the same input is otherwise the same."""
    data = (SAMPLES / "clean_837p.837").read_bytes()
    if new is None:  # CLM05 with two components too many
        start = data.index(old)
        end = data.index(b"~", start)
        parts = data[start:end].split(b"*")
        parts[5] += b":9:9"
        data = data[:start] + b"*".join(parts) + data[end:]
    else:
        data = data.replace(old, new, 1)
    theirs, ours = both(data)
    pyx12_only = list((Counter(theirs) - Counter(ours)).elements())
    ours_only = list((Counter(ours) - Counter(theirs)).elements())
    assert pyx12_only or ours_only, "the validators agree: the entry is not needed"
    difference = explained(pyx12_only, ours_only, list((Counter(theirs) & Counter(ours)).elements()))
    assert difference is not None and difference.name == name

