"""The compiled implementation-guide validator's tables, cache and loop state machine
(scrubber.x12.guide): each behaviour of pyx12's walker and reader it reproduces, on crafted
inputs, checked against pyx12 itself."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import pyx12.map_if
import pyx12.params
from click.testing import CliRunner
from conftest import SAMPLES
from guide_run import both, findings

from scrubber.cli import cli
from scrubber.x12.guide import cache, make_validator
from scrubber.x12.guide import walker as walker_module
from scrubber.x12.guide.loops import LOOP, SEGMENT, compile_loops
from scrubber.x12.guide.validator import CompiledValidator
from scrubber.x12.ig import GuideValidator
from scrubber.x12.tokenizer import Delimiters

MAPS = ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml", "x12.control.00501.xml")
CLEAN = (SAMPLES / "clean_837p.837").read_bytes()
CLEAN_I = (SAMPLES / "clean_837i.837").read_bytes()


# -- the tables: what pyx12 reads of its maps ------------------------------------------------

@pytest.mark.parametrize("map_file", MAPS)
def test_tables_hold_what_pyx12_reads_of_the_map(map_file):
    """Every node: path (the counter key), position, usage, repeat, scan order, and the
    qualifier pyx12 tells siblings apart by."""
    root = pyx12.map_if.load_map_file(map_file, pyx12.params.params())
    t = compile_loops(map_file)
    seen = 0

    def visit(node, index):
        nonlocal seen
        theirs = [c for pos in sorted(node.pos_map) for c in node.pos_map[pos]]
        ours = t.children[index]
        assert [c.get_path() for c in theirs] == [t.path[i] for i in ours], node.get_path()
        for child, i in zip(theirs, ours, strict=True):
            seen += 1
            assert (t.pos[i], t.usage[i], t.max_repeat[i], t.xid[i], t.name[i]) == (
                child.pos, child.usage, child.get_max_repeat(), child.id, child.name), child.get_path()
            assert t.eq_key[i] == (child.id, child.parent.id)
            if child.is_loop():
                assert t.kind[i] == LOOP
                visit(child, i)
            else:
                assert t.kind[i] == SEGMENT
                key = child._resolve_unique_key_field(child.id, with_qual=False)
                if key is None:
                    assert t.match[i] is None, child.get_path()
                else:
                    element, ele_idx, sub_idx = key
                    assert t.match[i] == (ele_idx, sub_idx or 0, element._valid_codes_set), child.get_path()

    visit(root, 0)
    assert seen == len(t.kind) - 1


def test_every_usage_is_one_the_walker_knows():
    """pyx12 raises on a usage other than R, S, N: the maps have none, so neither do we."""
    for map_file in MAPS:
        t = compile_loops(map_file)
        assert set(t.usage[1:]) <= {"R", "S", "N"}


# -- the cache ----------------------------------------------------------------------------------

@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCRUBBER_CACHE_DIR", str(folder))
    monkeypatch.setattr(cache, "_memory", {})
    return folder


def _source(tmp_path: Path, text: str = "map") -> Path:
    path = tmp_path / "source.xml"
    path.write_text(text)
    return path


def test_cache_stores_the_tables_and_the_next_process_reads_them(cache_dir, tmp_path):
    source = _source(tmp_path)
    assert cache.cached("t", source, 1, lambda: {"built": 1}, dict) == {"built": 1}
    (stored,) = cache_dir.iterdir()
    cache._memory.clear()

    def must_not_build():
        raise AssertionError("the cached tables were compiled again")

    assert cache.cached("t", source, 1, must_not_build, dict) == {"built": 1}
    assert stored.exists()


def test_cache_is_keyed_by_the_map_digest_and_the_compiler_version(cache_dir, tmp_path):
    source = _source(tmp_path)
    cache.cached("t", source, 1, lambda: {"v": 1}, dict)
    cache._memory.clear()
    assert cache.cached("t", source, 2, lambda: {"v": 2}, dict) == {"v": 2}
    source.write_text("another map")
    cache._memory.clear()
    assert cache.cached("t", source, 2, lambda: {"v": 3}, dict) == {"v": 3}
    assert len(list(cache_dir.iterdir())) == 3


def test_a_corrupt_cache_file_is_rebuilt_not_trusted(cache_dir, tmp_path):
    source = _source(tmp_path)
    cache.cached("t", source, 1, lambda: {"good": 1}, dict)
    (stored,) = cache_dir.iterdir()
    for bad in (b"not a pickle", pickle.dumps(("0" * 64, {"forged": 1})), pickle.dumps(["wrong shape"]),
                stored.read_bytes()[:10]):
        stored.write_bytes(bad)
        cache._memory.clear()
        assert cache.cached("t", source, 1, lambda: {"good": 2}, dict) == {"good": 2}


def test_a_fifo_in_place_of_a_cache_file_is_not_opened_and_old_files_go(cache_dir, tmp_path):
    """A FIFO where the tables' file goes would block every run (opening it waits for a writer):
    it is not read, and the tables built replace it. Tables of another map or compiler that no
    run has read for 30 days are removed when new ones are stored."""
    import signal
    import time

    from scrubber import user_cache

    source = _source(tmp_path)
    cache.cached("t", source, 1, lambda: {"v": 1}, dict)
    (stored,) = cache_dir.iterdir()
    stored.unlink()
    os.mkfifo(stored)
    cache._memory.clear()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked on the FIFO")))
    signal.alarm(20)
    try:
        assert cache.cached("t", source, 1, lambda: {"v": 2}, dict) == {"v": 2}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert stored.is_file()
    month_ago = time.time() - user_cache.UNUSED_FOR - 3_600
    os.utime(stored, (month_ago, month_ago))
    cache._memory.clear()
    assert cache.cached("t", source, 2, lambda: {"v": 3}, dict) == {"v": 3}
    (kept,) = cache_dir.iterdir()
    assert kept.name.endswith("-v2.pickle")


def test_an_unwritable_cache_folder_keeps_the_tables_in_memory(tmp_path, monkeypatch):
    """A folder that cannot be made (a file is in the way; root can write anywhere else)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SCRUBBER_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(cache, "_memory", {})
    source = _source(tmp_path)
    assert cache.cached("t", source, 1, lambda: {"mem": 1}, dict) == {"mem": 1}
    assert cache.cached("t", source, 1, lambda: {"mem": 2}, dict) == {"mem": 1}


def test_the_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRUBBER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "scrubber"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "scrubber"


def test_a_fresh_process_validates_from_the_cache_files(cache_dir):
    """Two processes: the first compiles and stores, the second loads (no lxml parse)."""
    code = ("import scrubber.x12.guide.loops as l, sys\n"
            "calls = []\n"
            "real = l.compile_loops\n"
            "l.compile_loops = lambda m: calls.append(m) or real(m)\n"
            "import scrubber.x12.guide.validator as v\n"
            "v.compile_loops = l.compile_loops\n"
            "v.load_tables('837.5010.X222.A1.xml')\n"
            "print(len(calls))\n")
    env = dict(os.environ, SCRUBBER_CACHE_DIR=str(cache_dir))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("1", "0")


# -- the walk, against pyx12, one behaviour at a time ---------------------------------------------

def _edit(data: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    assert old in data, old
    return data.replace(old, new, count)


def _same_and_has(data: bytes, code: str, seg_id: str | None = None) -> list:
    theirs, ours = both(data)
    assert ours == theirs
    assert any(f[3] == code and (seg_id is None or f[1] == seg_id) for f in ours), ours
    return ours


def test_clean_files_have_no_findings():
    assert both(CLEAN) == ([], [])
    assert both(CLEAN_I) == ([], [])


def test_mandatory_segment_missing_is_3_on_the_segment_before():
    data = _edit(CLEAN, b"N3*100 MAIN STREET~\n", b"")
    found = _same_and_has(data, "3", "N3")
    n3 = next(f for f in found if f[1] == "N3")
    nm1 = data.split(b"~\n").index(b"NM1*85*2*EXAMPLE ONCOLOGY ASSOCIATES*****XX*1234567893") + 1
    assert n3[0] == nm1  # the gap is after the NM1, in its loop


def test_mandatory_loop_missing_is_3():
    start = CLEAN.index(b"NM1*PR*")
    end = CLEAN.index(b"CLM*")
    _same_and_has(CLEAN[:start] + CLEAN[end:], "3", "NM1")


def test_segment_not_found_is_1_and_the_walk_stays_where_it_was():
    data = _edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\nZZZ*1~\n")
    found = _same_and_has(data, "1")
    assert [f for f in found if f[3] != "1"] == []  # the next segments are placed as before


def test_segment_over_its_max_use_is_5():
    _same_and_has(_edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\nDMG*D8*19550101*F~\n"), "5", "DMG")


def test_loop_over_its_repeat_is_4():
    """2400 repeats at most 50 times in a claim."""
    start = CLEAN.index(b"LX*1~")
    end = CLEAN.index(b"~\n", CLEAN.index(b"SV1*", start)) + 2
    line = CLEAN[start:end]
    lines = b"".join(line.replace(b"LX*1~", f"LX*{n}~".encode()) for n in range(1, 52))
    data = CLEAN[:start] + lines + CLEAN[end:]
    _same_and_has(data, "4", "2400")


def test_hl_counting_and_parents_are_hl1_and_hl2():
    _same_and_has(_edit(CLEAN, b"HL*2*1*22*0", b"HL*7*1*22*0"), "HL1")
    _same_and_has(_edit(CLEAN, b"HL*9*1*22*0", b"HL*9*4*22*0"), "HL2")  # the set's last HL: nothing after it


def test_regression_one_wrong_hl02_made_every_later_hl_of_the_set_an_error():
    # pyx12 empties its stack of open levels at an HL02 it does not know, so HL 3 to 9 (whose
    # parent, HL 1, is open) were "not a valid parent" too, and every later claim was rejected.
    # The compiled validator reports the wrong HL alone (differences.py: "An HL02 that names no
    # open level"); a patient loop under a later subscriber is still checked against its parent.
    theirs, ours = both(_edit(CLEAN, b"HL*2*1*22*0", b"HL*2*9*22*0"))
    assert [(f[0], f[3]) for f in ours] == [(13, "HL2")]
    assert [(f[0], f[3]) for f in theirs] == [(n, "HL2") for n in (13, 32, 46, 62, 81, 99, 111)]
    _, ours = both(_edit(_edit(CLEAN, b"HL*2*1*22*0", b"HL*2*9*22*0"), b"HL*7*6*23*0", b"HL*7*5*23*0"))
    assert [(f[0], f[3]) for f in ours] == [(13, "HL2"), (87, "HL2")]  # HL 5 was closed by HL 6


def test_837_service_line_numbers_are_lx():
    _same_and_has(_edit(CLEAN, b"LX*1~", b"LX*3~"), "LX")


def test_a_qualifier_tells_sibling_loops_apart():
    """NM1*85 opens 2010AA; NM1*87 (pay-to) after it opens 2010AB, not a repeat of 2010AA."""
    data = _edit(CLEAN, b"REF*EI*123456789~\n", b"REF*EI*123456789~\nNM1*87*2~\nN3*1 A ST~\nN4*SPRINGFIELD*IL*62701~\n")
    assert both(data) == ([], [])
    bad = _edit(CLEAN, b"REF*EI*123456789~\n", b"REF*EI*123456789~\nNM1*99*2~\n")
    _same_and_has(bad, "1")


def test_leading_space_and_trailing_separator_are_reader_errors():
    _same_and_has(_edit(CLEAN, b"\nDMG*", b"\n DMG*"), "1", "DMG")
    _same_and_has(_edit(CLEAN, b"DMG*D8*19550101*F~", b"DMG*D8*19550101*F*~"), "SEG1", "DMG")


def test_segment_id_with_line_break_reads_as_pyx12_reads_it():
    """Regression (found by the mutation differential): pyx12's segment-id pattern ends in $,
    which also matches before a final line break, so "N3\\n" is a valid id to its reader (the walk
    still does not find it). We reported a second error 1 on the next segment."""
    data = _edit(CLEAN, b"N3*100 MAIN STREET", b"N3\n*100 MAIN STREET")
    found = _same_and_has(data, "1")
    assert sum(1 for f in found if f[3] == "1") == 1


def test_reader_errors_of_an_unplaced_segment_go_with_the_next_placed_one():
    """pyx12 reports the reader's errors only once the walker placed a segment."""
    data = _edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\n ZZZ*1~\n")
    found = _same_and_has(data, "1")
    index = data.split(b"~\n").index(b" ZZZ*1") + 1
    assert (index + 1, "NM1", None, "1", "seg") in found


def test_missing_trailers_are_reported_at_the_end():
    cut = CLEAN[: CLEAN.index(b"SE*")]
    theirs, ours = both(cut)
    assert ours == theirs


def test_a_second_interchange_and_group_restart_the_counts():
    second = CLEAN.replace(b"000000101", b"000000102").replace(b"*101*X*", b"*102*X*").replace(b"GE*1*101", b"GE*1*102")
    assert both(CLEAN + second) == ([], [])
    # and a claim too many in the second one is counted from zero there, not from the first
    theirs, ours = both(CLEAN + _edit(second, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\nDMG*D8*19550101*F~\n"))
    assert ours == theirs
    assert [f[3] for f in ours] == ["5"]


def test_837p_then_837i_in_one_interchange_switch_maps():
    """Two groups of different guides in one interchange."""
    i_start = CLEAN_I.index(b"GS*")
    i_end = CLEAN_I.index(b"IEA*")
    p_end = CLEAN.index(b"IEA*")
    group_i = CLEAN_I[i_start:i_end].replace(b"GS*HC*SUBMIT001*RECV001*", b"GS*HC*SUBMIT001*RECV001*", 1)
    data = CLEAN[:p_end] + group_i + CLEAN[p_end:].replace(b"IEA*1*", b"IEA*2*")
    theirs, ours = both(data)
    assert ours == theirs


def _replay_inputs() -> list[bytes]:
    import random

    from fuzz import mutate, seeds

    small = [d for d in seeds.mutable_seeds() if len(d) <= 1600]
    rng = random.Random(77)
    found = [(SAMPLES / "defects_837p.837").read_bytes(), (SAMPLES / "defects_837i.837").read_bytes()]
    found[0] = _edit(found[0], b"~", b"~ZZZ*1~", 1)
    return found + [mutate.mutate(rng.choice(small), rng, small, max_size=1600) for _ in range(30)]


@pytest.mark.parametrize("data", _replay_inputs())
def test_a_replayed_walk_reports_what_a_fresh_walk_does(monkeypatch, data):
    """The traces (walker.py) are only a shortcut, and the steps they leave out cannot report
    anything: with the traces cleared before every segment (every walk a real one), the findings
    are the same, on files with many kinds of error."""
    from scrubber.x12.guide import validator as validator_module

    with_traces = findings(data, "compiled")
    real_walk = walker_module.Walker.walk
    real_feed = CompiledValidator.feed

    def fresh(self, node, seg_id, parts):
        self._traces.clear()
        return real_walk(self, node, seg_id, parts)

    def unplaced(self, seg, seg_id, group):
        self._placed.clear()  # (the validator's memo of placed segments follows traces too)
        return real_feed(self, seg, seg_id, group)

    monkeypatch.setattr(walker_module.Walker, "walk", fresh)
    monkeypatch.setattr(CompiledValidator, "feed", unplaced)
    monkeypatch.setattr(validator_module, "_PLACED", {})
    assert findings(data, "compiled") == with_traces
    assert with_traces == findings(data, "pyx12")


def test_the_factory_makes_both_validators_and_refuses_others():
    d = Delimiters("*", ":", "^", "~")
    assert isinstance(make_validator("compiled", d), CompiledValidator)
    assert isinstance(make_validator("pyx12", d), GuideValidator)
    with pytest.raises(ValueError, match="unknown validator"):
        make_validator("stupidedi", d)


# -- the option ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["scrub", "watch"])
def test_validator_option_is_offered_with_compiled_as_default(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert "--validator [compiled|pyx12]" in result.output
    assert "default: compiled" in " ".join(result.output.split())


def test_scrub_with_either_validator_writes_the_same_outputs(tmp_path):
    """The claim files (the 999 and 277CA carry the time they were made: compared with a fixed
    time in test_guide_differential.py)."""
    outputs = {}
    for validator in ("compiled", "pyx12"):
        out = tmp_path / validator
        result = CliRunner().invoke(cli, ["scrub", str(SAMPLES / "defects_837p.837"), "--out", str(out),
                                          "--today", "2026-11-27", "--outputs", "corrected,rejected",
                                          "--validator", validator, "-q"])
        assert result.exit_code == 1, result.output  # the defects file has rejected claims
        outputs[validator] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert outputs["compiled"].keys() == outputs["pyx12"].keys()
    assert outputs["compiled"] == outputs["pyx12"]


def test_an_unknown_validator_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["scrub", str(SAMPLES / "clean_837p.837"), "--out", str(tmp_path),
                                      "--validator", "stupidedi"])
    assert result.exit_code == 2
    assert "stupidedi" in result.output


def test_tables_that_cannot_be_pickled_stay_in_memory(cache_dir, tmp_path):
    source = _source(tmp_path)
    unpicklable = {"f": lambda: None}
    assert cache.cached("t", source, 1, lambda: unpicklable, dict) is unpicklable
    assert list(cache_dir.iterdir()) == []  # no half-written file left behind


def test_the_walk_memos_stay_bounded(monkeypatch):
    """A hostile file with endless distinct segment ids or qualifiers cannot grow the memos
    without bound."""
    monkeypatch.setattr(walker_module, "_MAX_TRACES", 50)
    monkeypatch.setattr(walker_module, "_MEMO", {})
    body = b"".join(b"REF*Q%d*1~\nZ%02d*1~\n" % (n, n % 100) for n in range(200))
    data = _edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\n" + body)
    theirs, ours = both(data)
    assert ours == theirs
    for _tables, candidates, traces, _keys, _bounded in walker_module._MEMO.values():
        assert len(candidates) <= 50 and len(traces) <= 50


def test_the_element_check_memo_stays_bounded_and_a_hit_reports_what_a_fresh_check_does(monkeypatch):
    """The element checks are memoised by (node, segment text): a file of endless distinct
    segments cannot grow the memo without bound, and a text seen before (the same DTP and REF
    over and over, valid and not) reports at each place what pyx12 reports there."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_MEMO_LIMIT", 20)
    monkeypatch.setattr(validator_module, "_CHECKERS", {})
    body = b"".join(b"DTP*472*D8*2026%04d~\nREF*EA*%d~\nREF*EA*~\n" % (n % 13 + 100, n) for n in range(60))
    data = _edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\n" + body)
    theirs, ours = both(data)
    assert ours == theirs and ours
    assert validator_module._CHECKERS
    for checker in validator_module._CHECKERS.values():
        assert 0 < len(checker.memo) <= 20


def _many_lines(count: int, date: bytes = b"20261102") -> bytes:
    """The first claim of CLEAN with `count` more service lines, every seventh numbered wrong,
    every fifth with an invalid date and every third with its DTP twice (over its max use)."""
    lines = []
    for n in range(3, count + 3):
        dtp = b"DTP*472*D8*%s~\n" % (b"20261302" if n % 5 == 0 else date)
        lines.append(b"LX*%d~\nSV1*HC:J9032*10*UN*1***1~\n%s" % (n + (n % 7 == 0), dtp * (2 if n % 3 == 0 else 1)))
    return _edit(CLEAN, b"CTP****200*ME~\n", b"CTP****200*ME~\n" + b"".join(lines))


def test_a_segment_placed_before_from_the_same_node_is_not_walked_again(monkeypatch):
    """The validator keeps what it did with a text placed from a node (_PLACED): the same text
    after the same node again is not split nor walked, and reports what a walk reports,
    including what depends on the counts (the 2400 loop past its 50 repeats, a DTP past its
    max use, LX numbers): the same as pyx12, and as the validator with that memo emptied
    before every segment."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_PLACED", {})
    data = _many_lines(60)
    walks = []
    real_walk = walker_module.Walker.walk

    def counted(self, node, seg_id, parts):
        walks.append(seg_id)
        return real_walk(self, node, seg_id, parts)

    monkeypatch.setattr(walker_module.Walker, "walk", counted)
    theirs, ours = both(data)
    assert ours == theirs
    assert {"4", "5", "8", "LX"} <= {f[3] for f in ours}, ours
    segments = data.count(b"~")
    assert len(walks) < segments / 2, (len(walks), segments)

    real_feed = CompiledValidator.feed

    def unplaced(self, seg, seg_id, group):
        self._placed.clear()
        return real_feed(self, seg, seg_id, group)

    monkeypatch.setattr(CompiledValidator, "feed", unplaced)
    walks.clear()
    assert findings(data, "compiled") == ours
    assert len(walks) > segments * 3 / 4


def test_the_memo_of_placed_segments_stays_bounded(monkeypatch):
    """A file of endless distinct segments, each seen twice, cannot grow the memo of placed
    segments without bound; what is reported stays pyx12's."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_PLACED_LIMIT", 20)
    monkeypatch.setattr(validator_module, "_PLACED", {})
    data = _many_lines(45, date=b"20261102~\nDTP*472*D8*20261102")
    theirs, ours = both(data)
    assert ours == theirs and ours
    assert validator_module._PLACED
    assert all(0 < len(memo) <= 20 for memo in validator_module._PLACED.values() if memo)


def test_regression_the_memos_kept_per_delimiters_are_bounded_so_new_delimiters_cannot_grow_a_watcher(monkeypatch):
    """A checker and a memo of placed segments (each up to a few MB) were kept for every map and
    set of delimiters the process ever met: a watcher fed files with ever new delimiters grew
    without end. The latest few are kept, and a file whose delimiters were forgotten is checked as before."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_CHECKERS", {})
    monkeypatch.setattr(validator_module, "_PLACED", {})
    marks = "!#$%&()+,./;<=>?@[]{}|"
    findings(CLEAN, "compiled")
    for mark in marks:
        CompiledValidator(Delimiters(mark, ":" if mark != ":" else "!", "^", "~"))
    limit = validator_module._KEPT_DELIMITERS
    assert len(marks) > limit
    assert len(validator_module._CHECKERS) == len(validator_module._PLACED) == limit
    assert not any(key[1].element == "*" for key in validator_module._PLACED)
    theirs, ours = both(CLEAN)
    assert ours == theirs


def test_regression_the_validators_memos_keep_a_few_thousand_texts_so_its_memory_stays_flat(monkeypatch):
    """The element checks' memo kept up to 50,000 segment texts: a file of distinct segments
    (claim ids, names, HL numbers) filled it only past some 10,000 claims, and the validator's
    peak memory grew from 10,000 to 100,000 claims (bench/run.py: 45.9 to 52.4 MiB). Now no memo
    of the validator holds more than 8,192 texts, whatever the file."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_CHECKERS", {})
    monkeypatch.setattr(validator_module, "_PLACED", {})
    body = b"".join(b"LX*1~\nSV1*HC:J9032*%d*UN*1***1~\nSV1*HC:J9032*%d*UN*1***1~\n" % (n, n) for n in range(12_000))
    data = _edit(CLEAN, b"CTP****200*ME~\n", b"CTP****200*ME~\n" + body)
    findings(data, "compiled")
    held = [len(checker.memo) for checker in validator_module._CHECKERS.values()]
    held += [len(memo) for memo in validator_module._PLACED.values()]
    assert max(held) > 3_000  # (the memos are used)
    assert max(held) <= 8_192, held


def test_the_validator_keeps_one_copy_of_a_checked_segment_not_two(monkeypatch):
    """The validator memoises the element checks by (node, text): the rules' own memos (by the
    split elements) are left empty, rather than holding a second copy of every segment."""
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_CHECKERS", {})
    monkeypatch.setattr(validator_module, "_PLACED", {})
    rules = validator_module.segments_rules("837.5010.X222.A1.xml")
    for rule in rules.values():
        for tables in rule.by_component.values():
            tables.memo.clear()
    assert findings(_many_lines(10), "compiled")
    assert any(checker.memo for checker in validator_module._CHECKERS.values())
    assert not any(tables.memo for rule in rules.values() for tables in rule.by_component.values())


def test_regression_the_element_check_memo_grew_to_8_mib_between_10000_and_100000_claims(tmp_path, monkeypatch):
    """The memo held up to 50,000 segment texts (about 8 MiB), most of them never seen again (claim
    ids, names): a --jobs worker's peak, and the main process's for one large set, grew until it
    was full, between 10,000 and 100,000 claims. It now holds a few MiB at most."""
    from test_jobs import GENERATE

    from scrubber.output import pipeline
    from scrubber.x12.guide import validator as validator_module

    monkeypatch.setattr(validator_module, "_CHECKERS", {})
    path = tmp_path / "claims.837"
    GENERATE.generate(8000, path, per_transaction=5000)
    with path.open("rb") as source:
        pipeline._validate(pipeline.HashingStream(source), pipeline._ValidationLog(), None, "compiled")
    held = 0
    for checker in validator_module._CHECKERS.values():
        held += sys.getsizeof(checker.memo) + sum(sys.getsizeof(key) + sys.getsizeof(key[1]) for key in checker.memo)
    assert held < 3 << 20, f"the element memo holds {held / (1 << 20):.1f} MiB"


@pytest.mark.parametrize("segment", [b"REF*:*::*:", b"REF**:*", b"REF***", b"REF**:*A:", b"REF*:*:*::B"])
def test_a_segment_of_component_separators_only_is_empty_as_pyx12_reads_it(segment):
    """pyx12's Segment.is_empty: every component of every element empty; one value anywhere
    and the segment is not empty (the reader tests all elements past the first at once)."""
    data = _edit(CLEAN, b"DMG*D8*19550101*F~\n", b"DMG*D8*19550101*F~\n" + segment + b"~\n")
    theirs, ours = both(data)
    assert ours == theirs
    empty = any(f[3] == "8" for f in ours)  # (an unplaced REF: it goes with the next segment)
    assert empty == (segment.count(b"A") + segment.count(b"B") == 0)


def test_an_isa_the_reader_cannot_take_refuses_the_file_as_pyx12_does():
    """pyx12's reader raises on an ISA without 16 elements: the file is refused (exit 3) with
    the same code by both validators, not a traceback."""
    validator = CompiledValidator(Delimiters("*", ":", "^", "~"))
    from scrubber.errors import InputError
    from scrubber.x12.tokenizer import Segment

    with pytest.raises(InputError) as refused:
        validator.feed(Segment(1, 0, "ISA*00*only*three", ""), "ISA", None)
    assert refused.value.code == "validator"
    assert "could not read the ISA" in str(refused.value)


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("validator", ["compiled", "pyx12"])
def test_watch_scrubs_with_the_validator_asked_for(tmp_path, monkeypatch, validator, jobs):
    # With one job the watcher scrubs the file itself; with two, a small file goes whole to a
    # worker (output/by_files.py), which scrubs it with the validator its FileJob names.
    import scrubber.watch.watcher as watcher_module

    asked = []
    real_scrub, real_job = watcher_module.scrub_stream, watcher_module.FileJob

    def spy(*args, **kwargs):
        asked.append(kwargs.get("validator"))
        return real_scrub(*args, **kwargs)

    def job_spy(*args, **kwargs):
        job = real_job(*args, **kwargs)
        asked.append(job.validator)
        return job

    monkeypatch.setattr(watcher_module, "scrub_stream", spy)
    monkeypatch.setattr(watcher_module, "FileJob", job_spy)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "defects.837").write_bytes((SAMPLES / "defects_837p.837").read_bytes())
    result = CliRunner().invoke(cli, ["watch", str(tmp_path), "--once", "--settle", "0.2", "--poll", "0.1",
                                      "--validator", validator, "--jobs", jobs])
    assert result.exit_code == 0, result.output
    assert asked == [validator]


@pytest.mark.parametrize("blank", ["\xa0", "\x85", "\x1c", " \t", "\x00"])
def test_a_blank_segment_is_left_to_the_syntax_checks_as_pyx12s_driver_leaves_it(blank):
    """Regression: the compiled validator skipped only segments starting with a control byte or
    a space, so one of non-ASCII white space (\\xa0) was walked where GuideValidator skips it
    (str.strip() removes it). \\x00 is not white space: both walk it."""
    from scrubber.x12.tokenizer import Segment

    results = []
    for make in (CompiledValidator, GuideValidator):
        validator = make(Delimiters("*", ":", "^", "~"))
        validator.feed(Segment(1, 0, "ISA*00*          *00*          *ZZ*A              *ZZ*B              "
                                     "*260101*1200*^*00501*000000001*0*P*:", ""), "ISA", None)
        validator.feed(Segment(2, 0, blank, ""), blank, None)
        results.append([(e.segment, e.code, e.level) for e in validator.take_errors()])
    assert results[0] == results[1]


def test_regression_a_flood_of_one_unknown_segment_holds_one_message_not_one_each():
    """Fuzzing (bench/fuzz.py) made a 618 KB file of 153,000 `ZZZ` segments in a service line
    that took 223 MiB and 6 s to scrub: each of its 306,000 errors held its own copy of one of a
    few messages, in pass 1 and again as read back from pass 1's log. Alike messages are one
    string now, and stay one through the log's pickle."""
    import io

    from scrubber.x12.envelope import EnvelopeReader
    from scrubber.x12.tokenizer import SegmentReader

    data = _edit(CLEAN, b"CTP****200*ME~\n", b"CTP****200*ME~\n" + b"ZZZ~\n" * 2_000)
    reader = SegmentReader(io.BytesIO(data))
    validator = CompiledValidator(reader.delimiters)
    errors = []
    for _event in EnvelopeReader(reader, reader.delimiters, validator.feed):
        errors += validator.take_errors()
    validator.finish()
    errors += validator.take_errors()
    assert len(errors) >= 2_000
    assert len({id(e.message) for e in errors}) <= 10
    back = pickle.loads(pickle.dumps(errors, pickle.HIGHEST_PROTOCOL))
    assert back == errors
    assert len({id(e.message) for e in back}) <= 10


def test_a_structural_error_pickles_whole():
    """StructuralError pickles as its fields (pass 1's log, the workers' results): every field
    comes back, the raw-input ones too."""
    from scrubber.x12.structural import StructuralError

    error = StructuralError(7, "NM1", "NM103", "S002", "raw", "a control byte", offset=1234, byte=7)
    assert pickle.loads(pickle.dumps(error, pickle.HIGHEST_PROTOCOL)) == error
    assert pickle.loads(pickle.dumps([error, error])) == [error, error]


def test_control_numbers_used_again_are_found_as_pyx12_finds_them():
    """An ST02 used again in its group, a GS06 in its interchange, an ISA13 in the file: the same
    findings as pyx12 (the numbers seen are kept in sets: a group of 100,000 one-claim sets had
    looked each ST02 up among all those before it)."""
    text = CLEAN.decode("latin-1")
    st, ge = text.index("ST*837*"), text.index("GE*1*101~")
    body = text[st:ge]
    group = text[text.index("GS*"):st] + body + body + "GE*2*101~\n"
    isa, iea = text[:text.index("GS*")], "IEA*2*000000101~\n"
    data = (isa + group + group + iea) * 2
    theirs, ours = both(data.encode("latin-1"))
    assert ours == theirs
    codes = {finding[3] for finding in ours}
    assert {"23", "6", "025"} <= codes, codes
