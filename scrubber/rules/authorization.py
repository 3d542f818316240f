"""Prior authorization that a payer requires for a drug (REF*G1 at 2300 or 2400)."""

from __future__ import annotations

from ..model.claim import Claim
from .findings import Findings
from .lines import is_hcpcs
from .ruleset import RuleSet

RULES = ("A001", "A002", "A003")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    _documentation(claim, out)
    policy = out.policy
    if not policy.prior_auth_codes or claim.prior_auth:
        return
    for line in claim.lines:
        if is_hcpcs(line) and line.procedure in policy.prior_auth_codes and not line.prior_auth:
            # The payer's own policy (by payer id) is its word: an error. A payer class's default
            # only says such plans commonly require it: a warning.
            rule = "A001" if policy.prior_auth_by_payer_id else "A002"
            out.add(rule, line.code, line, payer=policy.name, code=line.procedure)


def _documentation(claim: Claim, out: Findings) -> None:
    """A payer's policy may ask, for a drug, for an attachment (PWK with a report type) or a note
    (NTE), on the claim (2300) or the drug's line (2400)."""
    for need in out.policy.documentation:
        for line in claim.lines:
            if not is_hcpcs(line) or line.procedure != need.code:
                continue
            if need.report_type is not None:
                types = {f.value for f in claim.attachments + line.attachments}
                if need.report_type not in types:
                    out.add("A003", line.code, line, payer=out.policy.name, code=line.procedure, what=need.what,
                            how=f"a PWK segment with report type {need.report_type} (PWK01)")
            elif not (claim.notes or line.notes):
                out.add("A003", line.code, line, payer=out.policy.name, code=line.procedure, what=need.what,
                        how="a note (NTE) on the claim or the line")
            break  # one finding per requirement and claim
