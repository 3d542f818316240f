"""Run both implementation-guide validators over a file as the pipeline's first pass does."""

from __future__ import annotations

import io

from scrubber.errors import InputError
from scrubber.x12.envelope import EnvelopeReader
from scrubber.x12.guide import make_validator
from scrubber.x12.tokenizer import SegmentReader

Finding = tuple  # (segment, seg_id, element, code, level), or ("refused", code, segment) last


def findings(data: bytes, validator: str) -> list[Finding]:
    """The StructuralErrors (segment, seg_id, element, code, level) in the order found; a file
    refused ends with ("refused", its InputError code, the segment it names)."""
    out: list[Finding] = []
    try:
        reader = SegmentReader(io.BytesIO(data))
        v = make_validator(validator, reader.delimiters)
        for _event in EnvelopeReader(reader, reader.delimiters, v.feed):
            out += [(e.segment, e.seg_id, e.element, e.code, e.level) for e in v.take_errors()]
        v.finish()
        out += [(e.segment, e.seg_id, e.element, e.code, e.level) for e in v.take_errors()]
    except InputError as exc:
        out.append(("refused", exc.code, getattr(exc, "segment", None)))
    return out


def both(data: bytes) -> tuple[list[Finding], list[Finding]]:
    return findings(data, "pyx12"), findings(data, "compiled")
