"""External code sets on the date of service: HCPCS, ICD-10-CM, and drug revenue codes."""

from __future__ import annotations

import datetime as dt

from ..model.claim import Claim, ServiceLine
from .findings import Findings
from .lines import is_hcpcs
from .ruleset import RuleSet

RULES = ("C001", "C002", "C003", "C004", "C005", "C006", "C007", "C008", "C009")

_ICD9_TO_ICD10 = {"BK": "ABK", "BF": "ABF", "BJ": "ABJ", "PR": "APR", "BN": "ABN"}


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for line in claim.lines:
        if is_hcpcs(line):
            _hcpcs(claim, line, rules, out)
    _diagnoses(claim, rules, out)
    if claim.is_institutional:
        _revenue_codes(claim, rules, out)


def _hcpcs(claim: Claim, line: ServiceLine, rules: RuleSet, out: Findings) -> None:
    code = line.procedure
    date = claim.line_date(line)
    if date is None:
        return
    profiled = rules.drugs.by_code(code)
    if profiled is not None:
        drug, drug_code = profiled
        if drug_code.valid_on(date):
            return
        if drug.no_established_code_from and date >= drug.no_established_code_from:
            history = ", ".join(f"{c.hcpcs} {c.dates}" for c in drug.codes)
            out.add("C009", line.code, line, code=code, drug=drug.label, date=date.isoformat(),
                    since=drug.no_established_code_from.isoformat(), history=history)
            return
        # Name the code for that date: the drug's own code history says which.
        instead = [c.hcpcs for c in drug.codes if c.valid_on(date)]
        hint = f": bill {' or '.join(instead)} for that date" if instead else ""
        if not instead and drug_code.replaced_by:
            hint = f": it was replaced by {' or '.join(drug_code.replaced_by)}"
        out.add("C001", line.code, line, code=code, date=date.isoformat(), valid=drug_code.dates, instead=hint)
        return
    table = rules.hcpcs
    if not table.is_level_two(code):
        return  # CPT (Level I) codes are not in the HCPCS Level II file
    entry = table.get(code)
    if entry is None:
        if table.speaks_for(date):
            out.add("C002", line.code, line, code=code, table=table.version)
        else:
            coverage = f"{table.terminations_listed_from} to {table.valid_through}"
            out.add("C003", line.code, line, code=code, table=table.version, coverage=coverage)
        return
    if entry.valid_on(date):
        return
    valid = f"from {entry.added}" + (f" to {entry.terminated}" if entry.terminated else "")
    hint = ""
    if entry.terminated and date > entry.terminated and entry.cross_reference:
        hint = f": see {entry.cross_reference}"
    out.add("C001", line.code, line, code=code, date=date.isoformat(), valid=valid, instead=hint)


def _claim_date(claim: Claim) -> dt.date | None:
    dates = [d for d in (claim.line_date(line) for line in claim.lines) if d is not None]
    if dates:
        return min(dates)
    return claim.statement_dates.start if claim.statement_dates else None


def _diagnoses(claim: Claim, rules: RuleSet, out: Findings) -> None:
    if not claim.diagnoses:
        return
    # The claim's date matters only for an ICD-9 qualifier or a code the table does not know (few
    # claims): found when first needed.
    date: dt.date | bool | None = False  # False: not found yet
    table = None
    for diagnosis in claim.diagnoses:
        qualifier = diagnosis.qualifier.value
        if qualifier in _ICD9_TO_ICD10:
            if date is False:
                date = _claim_date(claim)
            if date is not None and date >= rules.icd10_from:
                out.add("C007", diagnosis.code, code=diagnosis.code.value, qualifier=qualifier,
                        date=date.isoformat(), icd10_qualifier=_ICD9_TO_ICD10[qualifier])
            continue
        table = table or rules.icd10
        code = diagnosis.code.value
        if table.is_billable(code):
            continue
        if table.knows(code):
            example = table.example_subcode(code) or ""
            shown = f"{example[:3]}.{example[3:]}" if example else "a subcode"
            out.add("C004", diagnosis.code, code=diagnosis.dotted, example=shown)
            continue
        if date is False:
            date = _claim_date(claim)
        if date is not None and not table.valid_from <= date <= table.valid_through:  # type: ignore[operator]
            out.add("C006", diagnosis.code, code=diagnosis.dotted, table=table.version,
                    since=table.valid_from.isoformat(), through=table.valid_through.isoformat())
        else:
            out.add("C005", diagnosis.code, code=diagnosis.dotted, table=table.version)


def _revenue_codes(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for item in out.drug_lines:
        expected = item.code.institutional_revenue_code
        revenue = item.line.revenue_code
        if expected and revenue is not None and revenue.value != expected:
            out.add("C008", revenue, item.line, code=item.line.procedure, revenue=revenue.value,
                    expected=expected)

