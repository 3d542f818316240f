"""scrubber: a pre-submission scrubber for X12 5010 837P and 837I claims."""

from .errors import InputError, RuleDataError, ScrubberError
from .output.pipeline import Outputs, RunContext, ScrubRun, scrub_stream
from .output.report import JsonReport, Summary
from .rules.engine import FixMode
from .rules.ruleset import RuleSet, load_rules

__all__ = [
    "FixMode",
    "InputError",
    "JsonReport",
    "Outputs",
    "RuleDataError",
    "RuleSet",
    "RunContext",
    "ScrubRun",
    "ScrubberError",
    "Summary",
    "load_rules",
    "scrub_stream",
]
