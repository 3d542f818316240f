"""The exit codes of `scrubber scrub`, and which wins when a run has several (documented in the README).

    0    every input scrubbed, no claim rejected
    1    at least one claim rejected
    2    usage error, invalid rule data, or an output that cannot be written
    3    at least one input could not be read as an 837 (nothing written for it)
    4    an input, or a claim in it, could not be scrubbed because of an internal error (a bug: report it)
    130  interrupted by SIGINT (Ctrl-C), 143 stopped by SIGTERM: nothing half-written
"""

from __future__ import annotations

from .common import EXIT_INPUT, EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from .interrupts import EXIT_INTERRUPTED, EXIT_TERMINATED

EXIT_INTERNAL = 4

# Per input, the worst wins: a bug above an output that could not be written (both need someone to
# act) above an unreadable input above a rejected claim. 130 and 143 end the run where it stands.
PRIORITY = (EXIT_INTERNAL, EXIT_USAGE, EXIT_INPUT, EXIT_REJECTED, EXIT_OK)

__all__ = ["EXIT_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REJECTED", "EXIT_TERMINATED",
           "EXIT_USAGE", "PRIORITY", "worst"]


def worst(codes: list[int]) -> int:
    """The code a run exits with, given each input's."""
    return next((code for code in PRIORITY if code in codes), EXIT_OK)
