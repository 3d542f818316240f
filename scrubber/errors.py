"""The scrubber's exceptions: one small hierarchy, documented in the README.

ScrubberError
├── InputError       the input cannot be read as an 837 (CLI exit code 3)
└── RuleDataError    the rule data (built-in or a site's --rules) is invalid (CLI exit code 2)
"""

from __future__ import annotations


class ScrubberError(Exception):
    """Base of every error the scrubber raises on purpose."""


class InputError(ScrubberError):
    """The input as a whole cannot be scrubbed: not X12, not an 837 we read, or an envelope
    that cannot be trusted. Carries where the problem sits, so a user can find it."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        offset: int | None = None,
        segment: int | None = None,
    ) -> None:
        # A message may quote the input (a segment id): control characters are shown as escapes,
        # so it can be printed or logged whole, as one line.
        if not message.isprintable():
            message = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in message)
        super().__init__(message)
        self.message = message
        self.code = code
        self.offset = offset
        self.segment = segment

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in a worker process (a set's pass 1 there), it is pickled back to the main one:
        # Exception's own reduce would call InputError(message) without the keywords, and the
        # pool would break on it rather than pass the error on.
        return (_input_error, (self.message, self.code, self.offset, self.segment))

    def where(self) -> str:
        parts = []
        if self.segment is not None:
            parts.append(f"segment {self.segment}")
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{self.message} ({where})" if where else self.message

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "segment": self.segment,
            "offset": self.offset,
        }


def _input_error(message: str, code: str, offset: int | None, segment: int | None) -> InputError:
    return InputError(message, code=code, offset=offset, segment=segment)


class RuleDataError(ScrubberError):
    """A rule data file is invalid: names the file, the key and what was expected."""

    def __init__(self, path: str, key: str, expected: str) -> None:
        super().__init__(f"{path}: {key}: {expected}")
        self.path = path
        self.key = key
        self.expected = expected
