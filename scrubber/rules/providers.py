"""Provider identifiers: an NPI's check digit (Luhn over the 80840 prefix and its first nine digits)."""

from __future__ import annotations

import functools

from ..model.claim import Claim, Field, Party, is_digits
from .findings import Findings
from .ruleset import RuleSet

RULES = ("C010",)

# The NPI is a card issuer number under ISO/IEC 7812 with the prefix 80840 (health applications,
# United States); its tenth digit is the Luhn check digit over the prefix and the first nine.
NPI_PREFIX = "80840"


@functools.lru_cache(maxsize=4096)  # a file's claims name the same few providers again and again
def npi_is_valid(npi: str) -> bool:
    if len(npi) != 10 or not is_digits(npi):
        return False
    digits = [int(c) for c in NPI_PREFIX + npi[:9]]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 0:  # every second digit from the right, starting with the rightmost
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    roles: list[tuple[str, Party | None, object]] = [
        ("billing provider (2010AA)", claim.billing_provider, None),
        ("rendering provider (2310B)", claim.rendering_provider, None),
        ("attending provider (2310A)", claim.attending_provider, None),
    ]
    roles += [("rendering provider (2420A)", line.rendering_provider, line) for line in claim.lines]
    for role, party, line in roles:
        npi: Field | None = party.npi if party is not None else None
        if npi is not None and not npi_is_valid(npi.value):
            out.add("C010", npi, line, npi=npi.value, role=role)  # type: ignore[arg-type]
