"""The implementation-guide validator compiled from pyx12's maps (issue 11), and the choice
between it and pyx12's own walker (`--validator compiled|pyx12`)."""

from __future__ import annotations

from typing import Protocol

from ..envelope import Group
from ..structural import SetErrors
from ..tokenizer import Delimiters, Segment

VALIDATORS = ("compiled", "pyx12")
DEFAULT_VALIDATOR = "compiled"


class Validator(Protocol):
    """What the pipeline's first pass asks of a validator (both have it)."""

    def feed(self, seg: Segment, seg_id: str, group: Group | None) -> None: ...
    def take_errors(self) -> SetErrors: ...
    def finish(self) -> None: ...


def make_validator(name: str, delimiters: Delimiters) -> Validator:
    """"compiled": the compiled tables (the default); "pyx12": pyx12's walker, the second opinion."""
    if name == "compiled":
        from .validator import CompiledValidator

        return CompiledValidator(delimiters)
    if name == "pyx12":
        from ..ig import GuideValidator

        return GuideValidator(delimiters)
    raise ValueError(f"unknown validator {name!r} (one of {', '.join(VALIDATORS)})")
