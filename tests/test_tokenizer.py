"""The tokenizer: delimiters from the ISA, every byte kept, clear errors on what is not X12."""

from __future__ import annotations

import io
import random

import pytest

from scrubber.errors import InputError
from scrubber.x12 import tokenizer
from scrubber.x12.tokenizer import SegmentReader

ISA = "ISA*00*          *00*          *ZZ*SUBMIT001      *ZZ*RECV001        *261120*1200*^*00501*000000101*0*T*:~"


def segments(data: bytes, chunk_size: int = 1 << 20):
    reader = SegmentReader(io.BytesIO(data), chunk_size=chunk_size)
    return reader, list(reader)


def rebuild(reader, found) -> bytes:
    return (reader.prefix + "".join(s.text + s.suffix for s in found) + reader.trailer).encode("latin-1")


def test_delimiters_come_from_the_isa():
    data = ISA.replace("*", "|").replace(":~", ">!").encode() + b"GS|HC!"
    reader, found = segments(data)
    d = reader.delimiters
    assert (d.element, d.component, d.repetition, d.segment) == ("|", ">", "^", "!")
    assert [s.text[:2] for s in found] == ["IS", "GS"]


def test_4010_style_isa11_is_not_a_repetition_separator():
    data = ISA.replace("*^*00501*", "*U*00501*").encode()
    reader, _ = segments(data)
    assert reader.delimiters.repetition is None


@pytest.mark.parametrize("brk", [b"", b"\n", b"\r", b"\r\n"])
def test_line_breaks_are_kept_as_found(brk):
    body = [ISA.encode(), b"GS*HC*A*B~", b"ST*837*0001~"]
    data = brk.join(body) + brk
    reader, found = segments(data)
    assert len(found) == 3
    assert rebuild(reader, found) == data


@pytest.mark.parametrize("chunk", [1, 7, 105, 106, 107, 4096])
def test_chunk_boundaries_do_not_change_the_segments(chunk):
    data = (ISA + "\r\nGS*HC*A*B~\r\nST*837*0001~\r\nSE*2*0001~\r\n").encode()
    reader, found = segments(data, chunk_size=chunk)
    assert [s.suffix for s in found] == ["~\r\n"] * 4
    assert rebuild(reader, found) == data
    assert [s.offset for s in found] == [0, 108, 120, 134]


def _random_interchange(rnd, terminator: str) -> bytes:
    isa = ISA[:-1] + terminator
    pieces = [isa]
    for _ in range(rnd.randrange(1, 30)):
        pieces.append(rnd.choice(["", "\n", "\r", "\r\n", "\n\n", "\r\r\n", " \n"]))
        pieces.append(rnd.choice(["", "NM1*IL*1", " CLM*A", "LX*1", "\x01GS*HC", "SV1*HC:J9032*10"]) + terminator)
    pieces.append(rnd.choice(["", "\n", "\r\n", "\n  \n", "\r"]))
    return "".join(pieces).encode("latin-1")


@pytest.mark.parametrize("terminator", ["~", "\n", "\r"])
def test_regression_the_inlined_line_break_scan_keeps_every_segment_at_any_chunk_size(terminator):
    """The tokenizer reads line breaks without a call; on random interchanges (empty segments,
    runs of CR and LF, a break across a chunk boundary) every chunk size gives the same segments,
    offsets and suffixes, and the bytes written back are the input."""
    rnd = random.Random(11)
    for _ in range(60):
        data = _random_interchange(rnd, terminator)
        whole = segments(data)
        expected = [(s.index, s.offset, s.text, s.suffix) for s in whole[1]]
        assert rebuild(*whole) == data
        assert [s.offset for s in whole[1]] == [sum(len(t.text) + len(t.suffix) for t in whole[1][:i])
                                                for i in range(len(whole[1]))]
        for chunk in (1, 2, 3, 5, 64):
            reader, found = segments(data, chunk_size=chunk)
            assert [(s.index, s.offset, s.text, s.suffix) for s in found] == expected
            assert reader.trailer == whole[0].trailer


@pytest.mark.parametrize("span", [2, 9, 50, 1 << 16])
@pytest.mark.parametrize("terminator", ["~", "'", "\x1c"])
def test_splitting_a_chunk_at_once_gives_what_finding_each_segment_gives(terminator, span, monkeypatch):
    """The tokenizer splits each span of a chunk on the terminator at once (SegmentReader._split)
    and finds segments one by one only at the end (_scan): on random interchanges, at every chunk
    size and span (spans shorter than a segment included), the same segments, offsets, suffixes
    and trailer as _scan alone, and the same error on a file cut short."""
    monkeypatch.setattr(tokenizer, "_SPAN", span)
    rnd = random.Random(12)
    for n in range(80):
        data = _random_interchange(rnd, terminator)
        if n % 4 == 3:
            data += b"NM1*CUT"  # a file cut inside a segment
        for chunk in (1, 3, 64, 200, 4096):
            results = []
            for scan_only in (False, True):
                reader = SegmentReader(io.BytesIO(data), chunk_size=chunk)
                found: list = []
                try:
                    found.extend((seg.index, seg.offset, seg.text, seg.suffix)
                                 for seg in (reader._scan(0) if scan_only else reader))
                except InputError as exc:
                    found.append((exc.code, exc.offset, exc.segment))
                results.append((found, reader.trailer))
            assert results[0] == results[1], (data, chunk)


def test_bom_and_whitespace_before_the_isa_are_tolerated_and_kept():
    data = b"\xef\xbb\xbf \r\n" + ISA.encode() + b"GS*HC~"
    reader, found = segments(data)
    assert reader.prefix == "\xef\xbb\xbf \r\n"
    assert found[0].offset == 6
    assert rebuild(reader, found) == data


def test_non_ascii_bytes_survive_the_round_trip():
    data = ISA.encode() + b"NM1*82*1*REN\xc9~"
    reader, found = segments(data)
    assert rebuild(reader, found) == data


def test_empty_segment_is_a_segment_of_its_own():
    _, found = segments(ISA.encode() + b"GS*HC~~ST*837~")
    assert [s.text for s in found][1:] == ["GS*HC", "", "ST*837"]


@pytest.mark.parametrize(
    ("data", "code", "where"),
    [
        (b"", "not_x12", "empty"),
        (b"   \n", "not_x12", "empty"),
        (b"GS*HC*SENDER~", "not_x12", "does not start with ISA"),
        (b"Example 1 - a claim\n\nISA*00", "not_x12", "it starts with 'Exa'"),
        (ISA[:80].encode(), "isa.short", "cut short"),
        (ISA.replace("*00*          *00", "*00*         *00", 1).encode() + b"~~~~", "isa.width", "ISA02"),
        (ISA.replace("*ZZ*SUBMIT001      *", "*ZZ*SUBMIT001       *").encode() + b"~~~", "isa.width", "ISA06"),
        (ISA.encode() + b"GS*HC*A", "truncated", "ends inside a segment"),
    ],
)
def test_what_is_not_x12_gets_one_clear_error(data, code, where):
    with pytest.raises(InputError) as caught:
        segments(data)
    assert caught.value.code == code
    assert where in str(caught.value)


def test_a_file_that_is_not_x12_is_not_quoted_past_where_isa_belongs(tmp_path):
    # A file named by mistake, or a link to one, must not carry its contents into the error
    # (which goes into the reports): only the three bytes where ISA belongs are shown.
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$saltsalt$hashhashhash:20228:0:99999:7:::\n")
    with pytest.raises(InputError) as caught, secret.open("rb") as stream:
        SegmentReader(stream)
    assert "(it starts with 'roo')" in str(caught.value)
    assert "salt" not in str(caught.value) and "20228" not in str(caught.value)


@pytest.mark.parametrize("span", [2, 9, 50, 1 << 16])
@pytest.mark.parametrize("line_break", ["", "\n", "\r\n", "\r"])
def test_a_span_with_one_line_break_after_every_terminator_is_split_on_both(line_break, span, monkeypatch):
    """Most files end every segment the same way (no line break, or one LF): such a span is split
    on the terminator and line break at once. The same segments, offsets, suffixes and trailer as
    _scan alone, also when one segment of the file ends otherwise (two line breaks, a CR before
    the LF, none), which sends its span the slow way."""
    monkeypatch.setattr(tokenizer, "_SPAN", span)
    rnd = random.Random(13)
    isa = ("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260101*1200*^*00501*"
           "000000001*0*T*:~")
    fast = []
    real = tokenizer._one_line_break

    def spy(*args):
        found = real(*args)
        fast.append(found is not None)
        return found

    monkeypatch.setattr(tokenizer, "_one_line_break", spy)
    for n in range(40):
        texts = [rnd.choice(["NM1*IL*1", "CLM*A", "LX*1", "", "SV1*HC:J9032*10", "N3*1 ELM"])
                 for _ in range(rnd.randrange(1, 40))]
        ends = [line_break] * len(texts)
        if n % 3 == 2:
            ends[rnd.randrange(len(ends))] = rnd.choice(["\n\n", "\r\n", "", "\n", "\r\r"])
        data = (isa + line_break + "".join(t + "~" + e for t, e in zip(texts, ends, strict=True))).encode("latin-1")
        for chunk in (1, 3, 64, 4096):
            results = []
            for scan_only in (False, True):
                reader = SegmentReader(io.BytesIO(data), chunk_size=chunk)
                found = [(seg.index, seg.offset, seg.text, seg.suffix)
                         for seg in (reader._scan(0) if scan_only else reader)]
                results.append((found, reader.trailer))
            assert results[0] == results[1], (data, chunk)
            written = "".join(text + suffix for _, _, text, suffix in results[0][0]) + results[0][1]
            assert written == data.decode("latin-1")
    assert True in fast and False in fast


@pytest.mark.parametrize("terminator", ["~", "\n"])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_a_shift_moves_every_index_and_offset_as_the_input_it_was_cut_from_has_them(terminator, chunk):
    """A worker reads a set copied out of the input (after its ISA and GS): `shift` gives its
    segments the indexes and offsets they have in the input, and a cut-short error says where."""
    data = (ISA[:-1] + terminator + f"GS*HC*A*B{terminator}ST*837*0001{terminator}SE*2*0001{terminator}").encode()
    plain = list(SegmentReader(io.BytesIO(data), chunk_size=chunk))
    shifted = list(SegmentReader(io.BytesIO(data), chunk_size=chunk, shift=(40, 5000)))
    assert [(s.index + 40, s.offset + 5000, s.text) for s in plain] == [(s.index, s.offset, s.text) for s in shifted]
    with pytest.raises(InputError) as cut:
        list(SegmentReader(io.BytesIO(data + b"CLM*1"), chunk_size=chunk, shift=(40, 5000)))
    assert (cut.value.segment, cut.value.offset) == (45, 5000 + len(data))
