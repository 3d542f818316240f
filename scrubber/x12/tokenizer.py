"""Split a raw X12 byte stream into segments, keeping every byte.

The interchange header (ISA) is fixed width and names the delimiters. Everything after it is
split on the segment terminator; whatever line break follows a terminator (none, LF, CR, CRLF)
is kept with its segment, so writing the segments back gives the input byte for byte.

Bytes are decoded as Latin-1, which maps each byte to one character: offsets in the text are
byte offsets in the file, and encoding back gives the same bytes even where a byte is not
ASCII (such bytes are reported by the syntax checks, not here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import InputError

ISA_LENGTH = 106
BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 1 << 20
_SPAN = 1 << 16  # of a chunk, split at once (SegmentReader._split)

# Where the element separator must sit in a 106-byte ISA, and the width of each field:
# ISA fields are fixed width, and receivers rely on it.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)


# What may stand before a segment id and leave it recognisable: white space and control bytes. The
# guide forbids them (the validator reports a leading space), but " CLM" or "\x01GS" is still the
# CLM or GS its sender meant, so it is read as one: a claim must not vanish for being malformed.
NOT_AN_ID = "".join(chr(c) for c in range(33)) + "\x7f"


def segment_id(raw_id: str) -> str:
    """The id of a segment whose first element is `raw_id`, past any white space or control bytes."""
    return raw_id.lstrip(NOT_AN_ID) if raw_id[:1] in NOT_AN_ID and raw_id else raw_id


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str
    component: str
    repetition: str | None
    segment: str


class Segment:
    """One segment as found: its text (without terminator) and what followed it.

    `index` is the 1-based position of the segment in the file and `offset` the byte offset
    of its first byte; both are what a user needs to find it in an editor.
    """

    __slots__ = ("_elements", "index", "offset", "suffix", "text")

    def __init__(self, index: int, offset: int, text: str, suffix: str) -> None:
        self.index = index
        self.offset = offset
        self.text = text
        self.suffix = suffix
        self._elements: list[str] | None = None

    def elements(self, delimiters: Delimiters) -> list[str]:
        if self._elements is None:
            self._elements = self.text.split(delimiters.element)
        return self._elements

    def split(self, delimiters: Delimiters) -> list[str]:
        """The elements, as `elements` gives them, without keeping the list on the segment: for a
        reader that keeps what it needs of them (a claim of 100,000 lines holds its segments)."""
        if self._elements is not None:
            return self._elements
        return self.text.split(delimiters.element)

    def seg_id(self, delimiters: Delimiters) -> str:
        # Not cached: the envelope reader asks every segment its id, and most need no more.
        if self._elements is not None:
            return self._elements[0]
        return self.text.partition(delimiters.element)[0]

    def raw(self) -> str:
        return self.text + self.suffix

    def __repr__(self) -> str:
        return f"Segment({self.index}, {self.text!r})"


def _line_break_after(buffer: str, pos: int, terminator: str) -> int:
    """Return the end of the line break that starts at pos (pos itself when there is none)."""
    end = pos
    if terminator == "\r":
        if buffer.startswith("\n", pos):
            end += 1
        return end
    if terminator == "\n":
        return end
    while end < len(buffer) and buffer[end] in "\r\n":
        end += 1
    return end


def parse_isa(text: str, offset: int) -> Delimiters:
    """Check the fixed-width ISA and return the delimiters it names."""
    if len(text) < ISA_LENGTH:
        raise InputError(
            f"the interchange header (ISA) is cut short: {len(text)} of {ISA_LENGTH} bytes",
            code="isa.short",
            offset=offset,
            segment=1,
        )
    element = text[3]
    if element.isalnum() or element in " \r\n":
        raise InputError(
            f"the ISA element separator {element!r} is not a usable delimiter",
            code="isa.delimiter",
            offset=offset + 3,
            segment=1,
        )
    pos = 3
    for number, width in enumerate(_ISA_WIDTHS, start=1):
        if text[pos] != element:
            raise InputError(
                f"ISA{number - 1:02d} is not {_ISA_WIDTHS[number - 2]} characters wide: ISA fields "
                "are fixed width (the whole ISA is 106 bytes)",
                code="isa.width",
                offset=offset + pos,
                segment=1,
            )
        end = pos + 1 + width
        if element in text[pos + 1 : end]:
            raise InputError(
                f"ISA{number:02d} is not {width} characters wide: ISA fields are fixed width "
                "(the whole ISA is 106 bytes)",
                code="isa.width",
                offset=offset + pos + 1,
                segment=1,
            )
        pos = end
    component = text[104]
    segment = text[105]
    repetition = text[82]
    # 4010 used ISA11 as a standards identifier ("U"); only a 5010 header names a repetition
    # separator there, and a letter or digit can never be one.
    if text[84:89] != "00501" or repetition.isalnum() or repetition == " ":
        repetition = None
    if segment.isalnum() or segment == " " or len({element, component, segment}) < 3:
        raise InputError(
            "the ISA names a segment terminator, element separator and component separator that "
            f"are not three distinct delimiters ({segment!r}, {element!r}, {component!r})",
            code="isa.delimiter",
            offset=offset + 103,
            segment=1,
        )
    return Delimiters(element=element, component=component, repetition=repetition, segment=segment)


def _one_line_break(buffer: str, pos: int, last: int, terminator: str, terminators: int) -> str | None:
    """The line break (a run of CR and LF, or none) that follows each of the `terminators`
    terminators of buffer[pos:last], when it is the same after every one of them; else None."""
    first = buffer.find(terminator, pos, last)
    end = first + 1
    while end < last and buffer[end] in "\r\n":
        end += 1
    line_break = buffer[first + 1 : end]
    if line_break:
        together = terminator + line_break
        if buffer.count(together, pos, last) != terminators:
            return None
        # (no longer run after any of them: "~\n\n" would hide an LF in the next text)
        if buffer.find(together + "\n", pos, last) >= 0 or buffer.find(together + "\r", pos, last) >= 0:
            return None
    elif buffer.find(terminator + "\n", pos, last) >= 0 or buffer.find(terminator + "\r", pos, last) >= 0:
        return None
    return line_break


class SegmentReader:
    """Streams segments from a binary file object.

    After construction, `prefix` holds any BOM and whitespace that came before the ISA and
    `delimiters` the delimiters the ISA names; iterate to get the segments, then read
    `trailer` for whitespace after the last terminator.
    """

    def __init__(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE, shift: tuple[int, int] = (0, 0)) -> None:
        # `shift`: the segments and bytes before the stream's first in the input it holds a part
        # of (output/by_sets.py): they are added to every segment's index and offset.
        self._stream = stream
        self._chunk_size = chunk_size
        head = stream.read(max(chunk_size, 4096))
        self.bytes_read = len(head)
        start = 0
        if head.startswith(BOM):
            start = len(BOM)
        while start < len(head) and head[start : start + 1] in (b" ", b"\t", b"\r", b"\n", b"\x0c"):
            start += 1
        if not head[start:].startswith(b"ISA"):
            # Only the three bytes where ISA belongs are quoted: enough to tell XML ('<?x'), a PDF
            # ('%PD') or a ZIP ('PK\x03') from a claim file, too little to carry what a file named
            # by mistake (or a link to one) holds into a report that may go back to its sender.
            found = head[start : start + 3].decode("latin-1")
            if not head.strip():
                message = "the file is empty"
            else:
                message = f"not an X12 interchange: the file does not start with ISA (it starts with {found!r})"
            raise InputError(message, code="not_x12", offset=start)
        text = head.decode("latin-1")
        self.prefix = text[:start]
        self.delimiters = parse_isa(text[start : start + ISA_LENGTH], start)
        self._buffer = text
        self._pos = start
        self._first_index, self._base = shift  # (_base: the file offset of _buffer[0])
        self.trailer = ""

    def _more(self) -> bool:
        chunk = self._stream.read(self._chunk_size)
        if not chunk:
            return False
        self.bytes_read += len(chunk)
        # Drop what has been consumed so the buffer stays one chunk or so long.
        self._base += self._pos
        self._buffer = self._buffer[self._pos :] + chunk.decode("latin-1")
        self._pos = 0
        return True

    def __iter__(self) -> Iterator[Segment]:
        index = self._first_index
        if self.delimiters.segment not in "\r\n":
            index = yield from self._split(index)
        yield from self._scan(index)

    def _split(self, index: int) -> Iterator[Segment]:
        """The segments of each chunk, split at once on the terminator (str.split, in C) rather
        than found one by one: a run of CR and LF after a terminator starts the next piece, and is
        the suffix of the segment before. The last segment of a span waits for the next span or
        chunk (its line break may go on there); at the end of the stream, what is left goes to _scan,
        which also finds a file cut short. Returns the index of the last segment read (`index`:
        the one before the first). Not for a CR or LF terminator (_scan's)."""
        terminator = self.delimiters.segment
        suffixes: dict[str, str] = {}  # line break -> terminator and line break, shared
        while True:
            buffer, pos, base = self._buffer, self._pos, self._base
            while True:
                # A span of the chunk at a time: the pieces of a whole chunk would be a second copy
                # of it in memory. A segment longer than the span takes the rest of the chunk.
                last = buffer.rfind(terminator, pos, pos + _SPAN)
                terminators = buffer.count(terminator, pos, last) if last > pos else 0
                if not terminators:
                    last = buffer.rfind(terminator, pos)
                    terminators = buffer.count(terminator, pos, last) if last > pos else 0
                    if not terminators:
                        break
                line_break = _one_line_break(buffer, pos, last, terminator, terminators)
                if line_break is not None:
                    # Every terminator of the span is followed by the same line break (most files:
                    # none, or one LF): split on both at once, and the pieces are the texts.
                    suffix = suffixes.get(line_break)
                    if suffix is None:
                        suffix = suffixes[line_break] = terminator + line_break
                    pieces = buffer[pos:last].split(suffix)
                    step = len(suffix)
                    start = pos
                    for text in pieces[:-1]:
                        index += 1
                        yield Segment(index, base + start, text, suffix)
                        start += len(text) + step
                    pos = self._pos = start  # the last segment of the span, read again
                    continue
                pieces = buffer[pos:last].split(terminator)
                text = pieces[0]  # (pos is where a segment starts: past the line break before it)
                start = pos
                for piece in pieces[1:]:
                    following = piece.lstrip("\r\n")
                    taken = len(piece) - len(following)
                    if taken:
                        line_break = piece[:taken]
                        suffix = suffixes.get(line_break)
                        if suffix is None:
                            suffix = suffixes[line_break] = terminator + line_break
                    else:
                        suffix = terminator
                    index += 1
                    yield Segment(index, base + start, text, suffix)
                    start += len(text) + 1 + taken
                    text = following
                # the last segment of the span, read again with the next span or chunk
                pos = self._pos = start
            if not self._more():
                return index

    def _scan(self, index: int) -> Iterator[Segment]:
        """The segments from the reader's position on, found one by one (`index` of them read)."""
        terminator = self.delimiters.segment
        # After a CR or LF terminator the line break is at most an LF (_line_break_after); after
        # any other, a run of CR and LF, most often one LF, looked at here without a call.
        plain = terminator not in "\r\n"
        suffixes: dict[str, str] = {}  # the same few line endings, shared rather than copied
        # The buffer, its position and base live in locals between reads (a segment is a few
        # dozen bytes: attribute look-ups cost as much as the search).
        buffer, pos, base = self._buffer, self._pos, self._base
        size = len(buffer)
        while True:
            end = buffer.find(terminator, pos)
            if end == -1:
                self._pos = pos
                if self._more():
                    buffer, pos, base = self._buffer, self._pos, self._base
                    size = len(buffer)
                    continue
                rest = self._buffer[self._pos :]
                if rest.strip():
                    raise InputError(
                        "the file ends inside a segment (no terminator "
                        f"{terminator!r} after {rest[:30]!r}): it may be cut short",
                        code="truncated",
                        offset=self._base + self._pos,
                        segment=index + 1,
                    )
                self.trailer = rest
                return
            after = end + 1
            if plain:
                if after < size and buffer[after] in "\r\n":
                    after += 1
                    while after < size and buffer[after] in "\r\n":
                        after += 1
            else:
                after = _line_break_after(buffer, after, terminator)
            if after == size and terminator != "\n":
                # A CR/LF pair may straddle the chunk boundary: look again with more data.
                self._pos = pos
                if self._more():
                    buffer, pos, base = self._buffer, self._pos, self._base
                    size = len(buffer)
                    continue
            index += 1
            suffix = buffer[end:after]
            yield Segment(index, base + pos, buffer[pos:end], suffixes.setdefault(suffix, suffix))
            pos = after
