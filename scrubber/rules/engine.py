"""Run the rules on a claim, apply the fixes allowed, check again, and decide its disposition.

Fixes work as in a linter: the allowed fixes are applied, the claim is read and checked again
(a fix may clear other findings, or let another fix apply), until nothing more changes. A
finding whose fix was applied is reported as fixed; what is left decides the disposition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from ..model.build import reread_claim
from ..model.claim import Claim
from ..x12.edit import set_element
from ..x12.tokenizer import Delimiters, Segment
from . import (
    authorization,
    balancing,
    cms_drugs,
    code_set,
    dates,
    diagnosis,
    drug_lines,
    history_checks,
    modifiers,
    ndc,
    providers,
    units,
)
from .findings import ClaimContext, Finding, Findings
from .lines import DrugLine

# In the order they run; each module names the rule ids it reports. cms_drugs: every drug in CMS's
# files (issue 10).
CHECKS = (dates, balancing, code_set, providers, units, drug_lines, history_checks, modifiers, diagnosis, ndc,
          authorization, cms_drugs)

MAX_PASSES = 10
RULES = ("S006",)  # the fix loop's own finding


class FixMode(Enum):
    NONE = "none"  # report fixes, apply none (--no-fix)
    SAFE = "safe"  # apply safe fixes (the default)
    UNSAFE = "unsafe"  # apply safe and unsafe fixes (--unsafe-fixes)

    def allows(self, safety: str) -> bool:
        return self is FixMode.UNSAFE or (self is FixMode.SAFE and safety == "safe")


ACCEPTED, CORRECTED, REJECTED = "accepted", "corrected", "rejected"


@dataclass
class ClaimResult:
    claim: Claim  # as read from the input
    disposition: str
    findings: list[Finding]
    # Segments the fixes changed, by position in the transaction: only for a corrected claim.
    replacements: dict[int, Segment] = field(default_factory=dict)
    final: Claim | None = None  # the claim as it goes out (after its fixes); None when rejected


# The checks that read only the claim; history_checks reads the claims before it in the run too.
LOCAL_CHECKS = tuple(module for module in CHECKS if module is not history_checks)


def check_claim(claim: Claim, context: ClaimContext) -> list[Finding]:
    """Every finding the rules make on the claim as it stands; without the checks across claims
    when `context.history` is None (they are then made by `settle_claim`)."""
    return _check(claim, context).items


# A claim with no CLM (Claim.missing_clm) is not checked by the rules: its segments may be a claim,
# part of one (its CLM stands elsewhere) or none, so what they would say of "the claim" (a pointer
# to no diagnosis, a missing charge) is noise beside the one finding that matters, the missing CLM,
# which rejects it (pipeline._OpenSet._seal_without_clm).
def _check(claim: Claim, context: ClaimContext) -> Findings:
    out = Findings(context, claim)
    if claim.missing_clm:
        return out
    for module in CHECKS if context.history is not None else LOCAL_CHECKS:
        module.check(claim, context.rules, out)
    return out


def _history_findings(claim: Claim, context: ClaimContext, drug_lines: list[DrugLine] | None = None) -> list[Finding]:
    out = Findings(context, claim, lines_found=drug_lines)  # (those its last check found)
    if not claim.missing_clm:  # (see _check)
        history_checks.check(claim, context.rules, out)
    return out.items


@dataclass
class LocalResult:
    """A claim checked and fixed by every rule but the checks across claims (U008, U009, U015),
    which need the claims before it in the run: `settle_claim` adds them and decides. Those
    checks offer no fix, so leaving them out of the fix loop changes nothing the loop does;
    this is what lets worker processes check claims ahead of the run's history."""

    claim: Claim
    structural: list[Finding]
    as_sent: list[Finding]  # the first check of the claim as sent
    findings: list[Finding]  # the last check, of the claim with its fixes (as_sent when none)
    limit: list[Finding]  # S006, when the fixes did not settle
    fixed: list[Finding]  # the findings whose fixes were applied and held
    replacements: dict[int, Segment]
    final: Claim  # the claim with its fixes (the claim itself when none)
    # The profiled lines of `final`, as its last check found them (None: not asked), for the checks
    # across claims; not sent back from a worker (parallel.py), which sends no claim either.
    drug_lines: list[DrugLine] | None = None


def scrub_claim(
    claim: Claim,
    segments: list[Segment],
    context: ClaimContext,
    mode: FixMode = FixMode.SAFE,
    structural: list[Finding] | None = None,
) -> ClaimResult:
    """Check one claim, fix what `mode` allows, and decide its disposition.

    `segments` is the whole transaction set the claim sits in; `structural` holds the
    syntax findings (implementation guide, raw input) that belong to the claim.
    """
    return settle_claim(check_claim_locally(claim, segments, context, mode, structural), context)


def check_claim_locally(
    claim: Claim,
    segments: list[Segment],
    context: ClaimContext,
    mode: FixMode = FixMode.SAFE,
    structural: list[Finding] | None = None,
) -> LocalResult:
    """The fix loop over every check that reads only the claim (`context.history` is not read)."""
    if context.history is not None:
        context = dataclasses.replace(context, history=None)  # type: ignore[arg-type]
    return _fix_loop(claim, segments, context, mode, structural, _check(claim, context))


class LocalCheck(NamedTuple):
    """One claim of a batch for check_claims_locally: check_claim_locally's arguments."""

    claim: Claim
    segments: Sequence[Segment]
    context: ClaimContext  # without history
    structural: list[Finding] | None


def check_claims_locally(batch: list[LocalCheck], mode: FixMode = FixMode.SAFE) -> list[LocalResult | Exception]:
    """check_claim_locally for each claim of a batch, in order; a claim whose checks raised gets
    the exception (the others are checked all the same). The first check runs each check module
    over every claim of the batch in turn, rather than every module over one claim: a module's
    code and tables then stay warm in the processor's caches (8% of the whole scrub at 10,000
    claims, bench/run.py). The fix loops that follow, rare, go a claim at a time. A MemoryError is
    raised, not given: it says nothing of the claim, and the claim must not be held back for it as
    for a bug in a rule (the watcher puts the file in error/ with the reason, watch/memory.py)."""
    found: list[Findings] = [Findings(item.context, item.claim) for item in batch]
    failed: list[Exception | None] = [None] * len(batch)
    for module in LOCAL_CHECKS:
        check = module.check
        for number, (item, out) in enumerate(zip(batch, found, strict=True)):
            if failed[number] is None and not item.claim.missing_clm:  # (see _check)
                try:
                    check(item.claim, item.context.rules, out)
                except MemoryError:
                    raise  # not this claim's fault: the scrub as a whole cannot go on (see check_claims_locally)
                except Exception as exc:  # this claim's checks stop here, as check_claim_locally's would
                    failed[number] = exc
    results: list[LocalResult | Exception] = []
    for item, out, fault in zip(batch, found, failed, strict=True):
        if fault is not None:
            results.append(fault)
            continue
        try:
            results.append(_fix_loop(item.claim, item.segments, item.context, mode, item.structural, out))
        except MemoryError:
            raise
        except Exception as exc:
            results.append(exc)
    return results


def _fix_loop(claim: Claim, segments: Sequence[Segment], context: ClaimContext, mode: FixMode,
              structural: list[Finding] | None, first: Findings) -> LocalResult:
    """Apply the allowed fixes to the claim checked once (`first`), check it again, and so on."""
    delimiters = context.delimiters
    structural = structural or []
    current = claim
    replacements: dict[int, Segment] = {}
    applied: list[Finding] = []
    last = first
    as_sent = findings = first.items
    settled = mode is FixMode.NONE
    for _ in range(MAX_PASSES if not settled else 0):
        fixes = _apply(findings, mode, replacements, segments, delimiters)
        if not fixes:
            settled = True
            break
        applied.extend(fixes)
        own = [replacements.get(p, segments[p]) for p in range(claim.first, claim.end)]
        current = reread_claim(claim, own, delimiters)
        last = _check(current, context)
        findings = last.items
    else:
        settled = settled or not _pending(findings, mode)
    limit = [] if settled else _pass_limit(claim, context)
    remaining_keys = {f.key for f in findings}
    # A fix whose finding is back after the re-check did not fix it: report what is left.
    fixed = [f for f in applied if f.key not in remaining_keys]
    return LocalResult(claim, structural, as_sent, findings, limit, fixed, replacements, current, last.lines_found)


def settle_claim(local: LocalResult, context: ClaimContext) -> ClaimResult:
    """Add the checks across claims (against `context.history`) and decide the disposition."""
    claim, structural, limit, fixed = local.claim, local.structural, local.limit, local.fixed
    across = _history_findings(local.final, context, local.drug_lines)
    findings = local.findings + across
    left = structural + findings + limit
    if any(f.is_error for f in left):
        # Nothing of a rejected claim goes out, so nothing on it was fixed: report the claim as
        # it was sent (each fix as the change to make at the source), never the findings of a
        # fixed claim that does not exist.
        if local.final is not claim:
            across = _history_findings(claim, context)
        return ClaimResult(claim, REJECTED, _ordered(structural + local.as_sent + across + limit))
    for finding in fixed:
        finding.fixed = True
    if fixed:
        return ClaimResult(claim, CORRECTED, _ordered(fixed + findings), local.replacements, local.final)
    return ClaimResult(claim, ACCEPTED, _ordered(left), final=local.final)


def _pending(findings: list[Finding], mode: FixMode) -> bool:
    return any(f.fix is not None and mode.allows(f.fix.safety) for f in findings)


def _pass_limit(claim: Claim, context: ClaimContext) -> list[Finding]:
    """The fixes did not settle within MAX_PASSES: what would go out is not known to be right."""
    out = Findings(context, claim)
    out.add("S006", claim.claim_id, passes=MAX_PASSES)
    return out.items


def _apply(
    findings: list[Finding],
    mode: FixMode,
    replacements: dict[int, Segment],
    segments: list[Segment],
    delimiters: Delimiters,
) -> list[Finding]:
    """Apply the allowed fixes that do not touch the same element twice; return their findings."""
    touched: set[tuple[int, int]] = set()
    done = []
    for finding in findings:
        fix = finding.fix
        if fix is None or not mode.allows(fix.safety):
            continue
        spots = {(e.position, e.element) for e in fix.edits}
        if spots & touched:
            continue  # the next pass sees this finding again, on the changed segment
        changed = False
        for edit in fix.edits:
            before = replacements.get(edit.position, segments[edit.position])
            after = set_element(before, delimiters, edit.element, edit.component, edit.value)
            if after.text != before.text:
                replacements[edit.position] = after
                changed = True
        if changed:
            touched |= spots
            done.append(finding)
    return done


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Claim-level findings first, then by line, each in segment order."""
    return sorted(findings, key=lambda f: (f.line or 0, f.segment or 0, f.rule.id))
