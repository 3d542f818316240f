"""What every output is: a renderer fed the same events, in file order, by the pipeline.

None of them decides anything: dispositions and findings are made once, by the rules; a sink only
writes them down in its own format. A sink ignores the events it has no use for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.build import TransactionLayout
from ..rules.engine import ClaimResult
from ..x12.envelope import Group, GroupEnd, Interchange, InterchangeEnd
from ..x12.ig import StructuralError
from ..x12.tokenizer import Delimiters
from .summary import Summary


@dataclass
class TransactionBatch:
    """One transaction set, scrubbed: its layout, each claim's result, and the structural errors
    found in it (implementation guide and raw input), with those of its ISA and GS."""

    layout: TransactionLayout
    results: list[ClaimResult]
    errors: list[StructuralError]
    envelope_errors: list[StructuralError]  # on the ISA or GS the set sits in

    @property
    def all_errors(self) -> list[StructuralError]:
        return self.envelope_errors + self.errors


class Sink:
    """Base of the renderers; every method is optional."""

    def begin(self, prefix: str, delimiters: Delimiters) -> None:
        """The input starts: whatever came before the ISA (a BOM, whitespace) and its delimiters."""

    def interchange(self, event: Interchange) -> None:
        pass

    def group(self, event: Group) -> None:
        pass

    def transaction(self, batch: TransactionBatch) -> None:
        pass

    def group_end(self, event: GroupEnd) -> None:
        pass

    def interchange_end(self, event: InterchangeEnd) -> None:
        pass

    def finish(self, summary: Summary, trailer: str) -> None:
        """The input was read to its end without a file-level error."""
