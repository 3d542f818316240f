"""scrubber: a pre-submission scrubber for X12 5010 837P and 837I claims.

    import scrubber
    result = scrubber.scrub("claims.837")          # in memory: files, findings, summary
    result.corrected, result.rejected, result.summary.rejected, result.findings

For large files, `scrub_stream` hands each claim to renderers (sinks) as it goes.
"""

from .api import ClaimOutcome, Result, scrub
from .errors import InputError, RuleDataError, ScrubberError
from .output.corrected import ClaimFileWriter
from .output.pipeline import RunContext, scrub_stream
from .output.report import JsonReport
from .output.sink import ScrubbedClaim, Sink, TransactionClosed
from .output.summary import Summary
from .rules.engine import FixMode
from .rules.ruleset import RuleSet, load_rules

__all__ = [
    "ClaimFileWriter",
    "ClaimOutcome",
    "FixMode",
    "InputError",
    "JsonReport",
    "Result",
    "RuleDataError",
    "RuleSet",
    "RunContext",
    "ScrubbedClaim",
    "ScrubberError",
    "Sink",
    "Summary",
    "TransactionClosed",
    "load_rules",
    "scrub",
    "scrub_stream",
]
