"""What every output is: a renderer fed the same events, in file order, by the pipeline.

None of them decides anything: dispositions and findings are made once, by the rules; a sink only
writes them down in its own format. A sink ignores the events it has no use for.

The events, for each input: `begin`; then per interchange `interchange`, per group `group`, per
claim `claim` (one at a time, never a whole transaction set), per transaction set
`transaction_end`, then `group_end`, `interchange_end`; `unattributed` for a claim that could not
be checked; `finish` once the input was read to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model.build import HLNode
from ..rules.engine import ClaimResult
from ..x12.envelope import Group, GroupEnd, Interchange, InterchangeEnd, TransactionSet
from ..x12.structural import StructuralError
from ..x12.tokenizer import Delimiters, Segment
from .summary import Summary, Unattributed


@dataclass(slots=True)
class ScrubbedClaim:
    """One claim, scrubbed, with what a writer needs to put it back in an 837: its transaction
    set's header segments (ST up to the first HL) and, through `result.claim.hl`, its HL loops."""

    result: ClaimResult
    transaction: TransactionSet
    header: list[Segment]
    errors: list[StructuralError]  # the structural errors that reach this claim

    @property
    def hl(self) -> HLNode | None:
        return self.result.claim.hl


class SetSegments:
    """The few segments of a transaction set that its structural errors point at (and their
    neighbours), by position in the set: what a 999 needs to name them, without holding the set."""

    def __init__(self, count: int, errors: list[StructuralError], base: int) -> None:
        self._count = count
        self._wanted: set[int] = {0, count - 1}
        self._kept: dict[int, Segment] = {}
        for error in errors:
            position = min(max(error.segment - base, 0), count - 1)
            # The segment, the one before (pyx12 places some errors one late) and a few after
            # (a missing segment is reported at the next one that is not empty).
            self._wanted.update(range(max(position - 1, 0), min(position + 5, count)))

    @property
    def wanted(self) -> set[int]:
        """The positions `offer` keeps (to be read, not changed: a reader asks before offering)."""
        return self._wanted

    def offer(self, position: int, segment: Segment) -> None:
        if position in self._wanted:
            self._kept[position] = segment

    def __getitem__(self, position: int) -> Segment:
        if position < 0:
            position += self._count
        found = self._kept.get(position)
        if found is None:
            raise IndexError(f"segment {position} of the set was not kept")
        return found

    def get(self, position: int) -> Segment | None:
        return self._kept.get(position)

    def __len__(self) -> int:
        return self._count


@dataclass(slots=True)
class TransactionClosed:
    """A transaction set has ended: its SE, its structural errors and those of its ISA and GS."""

    transaction: TransactionSet
    trailer: Segment
    count: int  # segments from ST to SE
    errors: list[StructuralError]
    envelope_errors: list[StructuralError]  # on the ISA or GS the set sits in
    segments: SetSegments
    claims: int  # claims read in the set

    @property
    def all_errors(self) -> list[StructuralError]:
        return self.envelope_errors + self.errors


class Sink:
    """Base of the renderers; every method is optional."""

    # Whether `transaction_end` reads `event.segments` (the segments its errors point at): they
    # are kept only when a sink asks, as the 999 does.
    wants_set_segments = False

    def begin(self, prefix: str, delimiters: Delimiters) -> None:
        """The input starts: whatever came before the ISA (a BOM, whitespace) and its delimiters."""

    def interchange(self, event: Interchange) -> None:
        pass

    def group(self, event: Group) -> None:
        pass

    def claim(self, item: ScrubbedClaim) -> None:
        pass

    def unattributed(self, item: Unattributed) -> None:
        """A claim that could not be checked, and so is in neither 837 (the report lists it)."""

    def transaction_end(self, event: TransactionClosed) -> None:
        pass

    def group_end(self, event: GroupEnd) -> None:
        pass

    def interchange_end(self, event: InterchangeEnd) -> None:
        pass

    def finish(self, summary: Summary, trailer: str) -> None:
        """The input was read to its end without a file-level error."""

    # Parallel scrubbing by transaction set (output/by_sets.py) renders each set's part of an
    # output in a worker process and splices the parts in the main process, in input order.
    def fragments(self) -> Callable[[], FragmentSink] | None:
        """A picklable factory of the sink that renders one transaction set's part of this output
        in a worker (fed `begin`, then the set's `claim`, `unattributed` and `transaction_end`
        events, never an envelope event), or None when this output cannot be written in parts:
        the input is then scrubbed claim by claim in the main process."""
        return None

    def splice(self, fragment: Any) -> None:
        """Write a transaction set's part, as a FragmentSink's `take()` gave it, as if its events
        had come here."""
        raise NotImplementedError


    # Parallel scrubbing of a large transaction set in chunks (output/by_chunks.py): as above, for
    # a run of the set's claims that neither opens nor closes it. An output whose parts hold
    # claims and nothing of their transaction set (a report) says so, and its set's parts serve.
    parts_hold_claims_only = False

    def chunk_fragments(self) -> Callable[[], FragmentSink] | None:
        """A picklable factory of the sink that renders a chunk's part of this output (fed `begin`,
        then `claim` and `unattributed` events only), or None when it cannot be written in chunks."""
        return self.fragments() if self.parts_hold_claims_only else None

    def splice_chunk(self, fragment: Any) -> None:
        """Write a chunk's part, as the chunk_fragments sink's `take()` gave it."""
        self.splice(fragment)


def renders_as_its_parts(sink: Sink, *made_by: str) -> bool:
    """Whether the sink does with a set's events what the class that makes its parts does (the
    first of its classes to define one of `made_by`): a subclass that changed its `claim` since
    would never have it run, the parts being made by that class."""
    kind = type(sink)
    maker = next(k for k in kind.__mro__ if any(name in vars(k) for name in made_by))
    return all(getattr(kind, name) is getattr(maker, name) for name in ("claim", "unattributed", "transaction_end"))


class FragmentSink(Sink):
    """A sink that renders one transaction set's part of an output (see Sink.fragments)."""

    def take(self) -> Any:
        """The part rendered, picklable, for the main process's `splice`."""
        raise NotImplementedError
