"""The one error of the reference data: a CMS file that cannot be read, or a store that is damaged."""

from __future__ import annotations

from ..errors import ScrubberError


class ReferenceDataError(ScrubberError):
    """A reference data file cannot be read (names the file and what was wrong), or a store is
    damaged. The CLI turns it into exit code 2."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
