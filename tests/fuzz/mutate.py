"""Mutations at the X12 level, for the fuzzer: what a hostile sender or a broken exporter sends.

A byte-level fuzzer seldom gets past the fixed-width ISA and the envelope counts; these mutations
keep the file mostly X12 and change what the scrubber's claim code reads: segments swapped,
duplicated, deleted, spliced from another file; other delimiters; control bytes, non-ASCII bytes
and odd numbers inside elements; leading spaces; deep HL nesting; claims with many lines; files
cut short. Each takes a random.Random, so a seed gives the same mutation every time.

    mutate(data, rng, others=()) -> bytes     one to three mutations, picked by rng
    MUTATIONS                                 name -> function(data, rng, others) -> bytes
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

# Bytes that break renderers and terminals (NUL, SOH, VT, ESC), and line breaks.
CONTROL_BYTES = (b"\x00", b"\x01", b"\x0b", b"\x1b", b"\r", b"\n", b"\x7f")
# Latin-1 and UTF-8 bytes, digits that str.isdigit() accepts and int() refuses (superscripts),
# and digits int() accepts that are not ASCII (Arabic-Indic).
NON_ASCII = (b"\xb2", b"\xb9", b"\xe9", b"\xff", b"\xc3\xa9", b"\xe2\x80\xae", b"\xd9\xa3", b"\xef\xbb\xbf")
# Element values that numbers, dates, codes and identifiers must survive.
ODD_VALUES = (b"", b"0", b"-1", b"-0", b"0.0000001", b"1e309", b"NaN", b"inf", b"999999999999999999",
              b"1.5", b"..", b" 12", b"12 ", b"\xb2", b"1\xb2", b"\xd9\xa3", b"20261399", b"20260229",
              b"19000101", b"99991231", b"J9032", b"C9442", b"J9037", b"JW", b"JZ", b"00000000000",
              b"1234567893", b"=cmd|' /C calc'!A0", b"<script>x</script>", b"A" * 300)
DELIMITER_SETS = ((b"|", b"^", b"!"), (b"^", b"\\", b"\n"), (b"\x1d", b"\x1f", b"\x1c"), (b"+", b">", b"'"),
                  (b"*", b":", b"\r\n"), (b"~", b"*", b":"))


class X12:
    """A file cut into segments with the delimiters its ISA names (a guess when it names none)."""

    def __init__(self, data: bytes) -> None:
        start = data.find(b"ISA")
        isa = data[start : start + 106] if start >= 0 else b""
        self.element = isa[3:4] if len(isa) == 106 else b"*"
        self.terminator = isa[105:106] if len(isa) == 106 else b"~"
        self.component = isa[104:105] if len(isa) == 106 else b":"
        if not self.terminator or self.terminator == self.element:
            self.terminator = b"~"
        pieces = data.split(self.terminator)
        # Each segment keeps its terminator and the line break after it, so joining gives the input.
        self.segments = [p + self.terminator for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])

    def join(self) -> bytes:
        return b"".join(self.segments)

    def seg_id(self, i: int) -> bytes:
        return self.segments[i].lstrip(b"\r\n").split(self.element, 1)[0]

    def where(self, *ids: bytes) -> list[int]:
        return [i for i in range(len(self.segments)) if self.seg_id(i) in ids]

    def body(self, rng: random.Random) -> int:
        """A segment index, mostly inside the transaction set (between ST and SE)."""
        starts, ends = self.where(b"ST"), self.where(b"SE")
        if starts and ends and ends[-1] > starts[0] + 1 and rng.random() < 0.85:
            return rng.randint(starts[0] + 1, ends[-1] - 1)
        return rng.randrange(len(self.segments))


Mutation = Callable[[bytes, random.Random, Sequence[bytes]], bytes]


def _segment_op(op: Callable[[X12, random.Random], None]) -> Mutation:
    def mutation(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
        x = X12(data)
        if len(x.segments) < 2:
            return data
        op(x, rng)
        return x.join()

    mutation.__name__ = op.__name__
    return mutation


@_segment_op
def swap(x: X12, rng: random.Random) -> None:
    i, j = x.body(rng), x.body(rng)
    x.segments[i], x.segments[j] = x.segments[j], x.segments[i]


@_segment_op
def duplicate(x: X12, rng: random.Random) -> None:
    i = x.body(rng)
    x.segments[i:i] = [x.segments[i]] * rng.choice((1, 1, 2, 5))


@_segment_op
def delete(x: X12, rng: random.Random) -> None:
    i = x.body(rng)
    del x.segments[i : i + rng.choice((1, 1, 1, 2, 4))]


@_segment_op
def move_claim_part(x: X12, rng: random.Random) -> None:
    """Move a run of segments (a claim's lines, an HL loop) elsewhere in the file."""
    i = x.body(rng)
    run = x.segments[i : i + rng.randint(1, 12)]
    del x.segments[i : i + len(run)]
    j = x.body(rng) if x.segments else 0
    x.segments[j:j] = run


@_segment_op
def leading_spaces(x: X12, rng: random.Random) -> None:
    i = x.body(rng)
    x.segments[i] = rng.choice((b" ", b"  ", b"\t", b"\r\n", b"\n ")) + x.segments[i]


@_segment_op
def line_breaks(x: X12, rng: random.Random) -> None:
    """Another line break after every terminator (or none)."""
    brk = rng.choice((b"", b"\n", b"\r\n", b"\r", b"\n\n"))
    x.segments = [s.rstrip(b"\r\n") + brk if s.rstrip(b"\r\n").endswith(x.terminator) else s for s in x.segments]


def _element_op(values: Callable[[random.Random], bytes], prefer: tuple[bytes, ...] = ()) -> Callable[
        [Callable[..., None]], Mutation]:
    def wrap(op: Callable[..., None]) -> Mutation:
        def mutation(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
            x = X12(data)
            if len(x.segments) < 2:
                return data
            candidates = x.where(*prefer) if prefer and rng.random() < 0.7 else []
            i = rng.choice(candidates) if candidates else x.body(rng)
            text = x.segments[i]
            end = len(text.rstrip(b"\r\n"))
            if text[:end].endswith(x.terminator):
                end -= len(x.terminator)
            fields = text[:end].split(x.element)
            if len(fields) < 2:
                return data
            k = rng.randrange(1, len(fields))
            fields[k] = op(fields[k], values(rng), rng, x)
            x.segments[i] = x.element.join(fields) + text[end:]
            return x.join()

        mutation.__name__ = op.__name__
        return mutation

    return wrap


# The segments the rules read: claim, service lines, NDC, dates, diagnoses, names, NPIs.
_CLAIM_SEGMENTS = (b"CLM", b"SV1", b"SV2", b"LIN", b"CTP", b"DTP", b"HI", b"NM1", b"REF", b"SBR", b"HL", b"LX")


@_element_op(lambda rng: rng.choice(ODD_VALUES), _CLAIM_SEGMENTS)
def odd_value(old: bytes, new: bytes, rng: random.Random, x: X12) -> bytes:
    if x.component in old and rng.random() < 0.5:
        parts = old.split(x.component)
        parts[rng.randrange(len(parts))] = new
        return x.component.join(parts)
    return new


@_element_op(lambda rng: rng.choice(CONTROL_BYTES), (b"CLM", b"NM1", b"SV1", b"REF", b"N3"))
def control_byte(old: bytes, new: bytes, rng: random.Random, x: X12) -> bytes:
    at = rng.randint(0, len(old))
    return old[:at] + new + old[at:]


@_element_op(lambda rng: rng.choice(NON_ASCII), (b"CLM", b"NM1", b"SV1", b"HI", b"N3", b"LIN"))
def non_ascii(old: bytes, new: bytes, rng: random.Random, x: X12) -> bytes:
    at = rng.randint(0, len(old))
    return old[:at] + new + old[at:] if rng.random() < 0.7 else old[:at] + new + old[at + 1 :]


def delimiters(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """Rewrite the file with other delimiters (the ISA names them); sometimes a clash."""
    x = X12(data)
    element, component, terminator = rng.choice(DELIMITER_SETS)
    table = {x.element: element, x.component: component, x.terminator: terminator}
    out = bytearray()
    for byte in data:
        b = bytes([byte])
        out += table.get(b, b)
    return bytes(out)


def control_anywhere(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    at = rng.randint(0, len(data))
    return data[:at] + rng.choice(CONTROL_BYTES + NON_ASCII) + data[at:]


def cut(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    return data[: len(data) - rng.randint(0, min(len(data), 400))]


def flip(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4))):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def splice(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """A run of segments from another file (its claims, its loops) into this one."""
    if not others:
        return data
    x, y = X12(data), X12(rng.choice(others))
    if len(x.segments) < 2 or len(y.segments) < 2:
        return data
    i = y.body(rng)
    run = y.segments[i : i + rng.randint(1, 30)]
    if y.element != x.element or y.terminator != x.terminator:
        run = [s.replace(y.element, x.element).replace(y.terminator, x.terminator) for s in run]
    j = x.body(rng)
    x.segments[j:j] = run
    return x.join()


def deep_hl(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """A chain of HL segments, each the child of the one before, before a claim."""
    x = X12(data)
    claims = x.where(b"CLM")
    if not claims:
        return data
    at = rng.choice(claims)
    depth = rng.choice((2, 10, 60, 300, 1200))
    e, t = x.element, x.terminator
    chain = [b"HL" + e + str(9000 + k).encode() + e + str(8999 + k).encode() + e + b"23" + e + b"1" + t + b"\n"
             for k in range(1, depth + 1)]
    x.segments[at:at] = chain
    return x.join()


def many_lines(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """A claim's service line (LX to the next LX or claim) repeated, the LX numbers following."""
    x = X12(data)
    lxs = x.where(b"LX")
    if not lxs:
        return data
    first = rng.choice(lxs)
    end = first + 1
    while end < len(x.segments) and x.seg_id(end) not in (b"LX", b"CLM", b"HL", b"SE"):
        end += 1
    line = x.segments[first:end]
    copies = rng.choice((3, 50, 51, 400))
    e = x.element
    added = []
    for n in range(copies):
        lx = x.segments[first].split(e)
        added.append(e.join([lx[0], str(1000 + n).encode() + x.terminator + b"\n"]))
        added.extend(line[1:])
    x.segments[end:end] = added
    return x.join()


def many_segments(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """Many short segments inside the transaction set (a NTE note, an empty segment)."""
    x = X12(data)
    if len(x.segments) < 2:
        return data
    i = x.body(rng)
    junk = rng.choice((b"NTE" + x.element + b"ADD" + x.element + b"X", b"", b"ZZZ", b"K3" + x.element + b"1"))
    x.segments[i:i] = [junk + x.terminator] * rng.choice((1, 10, 500, 3000))
    return x.join()


MUTATIONS: dict[str, Mutation] = {m.__name__: m for m in (
    swap, duplicate, delete, move_claim_part, leading_spaces, line_breaks, odd_value, control_byte, non_ascii,
    delimiters, control_anywhere, cut, flip, splice, deep_hl, many_lines, many_segments)}
# How often each is picked: the ones that keep the file readable most, the costly ones least.
WEIGHTS: dict[str, int] = dict.fromkeys(MUTATIONS, 10) | {
    "odd_value": 30, "swap": 15, "duplicate": 15, "delete": 15, "splice": 10, "deep_hl": 3, "many_lines": 3,
    "many_segments": 2, "cut": 4, "flip": 6, "delimiters": 4, "line_breaks": 3}


def mutate(data: bytes, rng: random.Random, others: Sequence[bytes] = (), names: Sequence[str] | None = None,
           max_size: int | None = None) -> bytes:
    """One to three mutations of `data`, picked by `rng` among `names` (every one by default)."""
    names = list(names or MUTATIONS)
    weights = [WEIGHTS[n] for n in names]
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = MUTATIONS[rng.choices(names, weights)[0]](data, rng, others)
    if max_size is not None and len(data) > max_size:
        data = data[:max_size]
    return data
