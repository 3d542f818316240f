"""Prior authorization that a payer requires for a drug (REF*G1 at 2300 or 2400)."""

from __future__ import annotations

from ..model.claim import Claim
from .findings import Findings
from .lines import is_hcpcs
from .ruleset import RuleSet

RULES = ("A001", "A002")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    policy = out.policy
    if not policy.prior_auth_codes or claim.prior_auth:
        return
    for line in claim.lines:
        if is_hcpcs(line) and line.procedure in policy.prior_auth_codes and not line.prior_auth:
            # The payer's own policy (by payer id) is its word: an error. A payer class's default
            # only says such plans commonly require it: a warning.
            rule = "A001" if policy.prior_auth_by_payer_id else "A002"
            out.add(rule, line.code, line, payer=policy.name, code=line.procedure)
