"""Diagnoses: pointers that name a diagnosis, drug lines tied to the drug's indication, and the
code that a claim's diagnoses say was really given."""

from __future__ import annotations

from ..model.claim import Claim, Diagnosis, is_digits
from .findings import Findings
from .lines import DrugLine, day
from .reference import Drug
from .ruleset import RuleSet

RULES = ("D001", "D002", "D003", "D004", "D005")

MAX_POINTERS = 4  # SV107-01 .. SV107-04


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    pointable = {d.position: d for d in claim.diagnoses if d.position}
    if not claim.is_institutional:
        for line in claim.lines:
            for pointer in line.pointers:
                if not is_digits(pointer.value) or int(pointer.value) not in pointable:
                    out.add("D001", pointer, line, pointer=pointer.value, lx=line.line_number or "?",
                            count=len(pointable))
    # Indications are ICD-10-CM; a claim coded in ICD-9-CM is C007's business.
    icd10 = [d for d in claim.coded_diagnoses if d.is_icd10]
    if not icd10:
        return
    reported: set[str] = set()
    policy = out.policy
    for item in out.drug_lines:
        if not item.drug.indication_codes:
            continue  # no indication on file for this drug
        covered = policy.covered_codes(item.code.hcpcs)
        prefixes = item.drug.indication_prefixes(covered or ())  # (once a line, not once a diagnosis)
        indicated = [d for d in icd10 if d.code.value.startswith(prefixes)]
        if covered is not None and not any(d.code.value.startswith(covered) for d in icd10):
            # The payer's own policy lists the covered diagnoses: outside it, the line is denied.
            if not (claim.is_institutional and item.drug.name in reported):
                reported.add(item.drug.name)
                _not_covered(item, covered, icd10, out)
            continue
        if indicated:
            if not claim.is_institutional:
                _not_pointed(item, pointable, indicated, out)
            continue
        if claim.is_institutional and item.drug.name in reported:
            continue  # the 837I has no line pointers: one finding per drug per claim
        reported.add(item.drug.name)
        other = rules.drugs.by_name(item.drug.confused_with) if item.drug.confused_with else None
        if other is not None and any(other.is_indicated_for(d.code.value) for d in icd10):
            _miscoded(claim, item, other, icd10, out)
        else:
            _missing(item, icd10, out)


def _missing(item: DrugLine, icd10: list[Diagnosis], out: Findings) -> None:
    codes = ", ".join(d.dotted for d in icd10)
    lead = f" (the claim has {codes})" if codes else ""
    out.add("D002", item.line.code, item.line, code=item.line.procedure, drug=item.drug.name,
            indication=item.drug.indication, codes=item.drug.indication_list, lead=lead)


def _not_covered(item: DrugLine, covered: tuple[str, ...], icd10: list[Diagnosis], out: Findings) -> None:
    listed = ", ".join(f"{p[:3]}.{p[3:]}*" if len(p) > 3 else f"{p}*" for p in covered)
    out.add("D005", item.line.code, item.line, payer=out.policy.name, code=item.line.procedure, codes=listed,
            diagnoses=", ".join(d.dotted for d in icd10))


def _miscoded(claim: Claim, item: DrugLine, other: Drug, icd10: list[Diagnosis], out: Findings) -> None:
    """J9032 with only myeloma diagnoses: belantamab's indication, the confusion to catch."""
    date = item.date
    code = other.code_on(date) if date is not None else None
    if code is not None:
        likely = code.hcpcs
    else:
        history = ", ".join(f"{c.hcpcs} {c.dates}" for c in other.codes)
        if other.no_established_code_from and date is not None and date >= other.no_established_code_from:
            likely = f"no established code for services from {other.no_established_code_from} ({history})"
        else:
            likely = f"no code on {day(date)} ({history})"
    out.add("D004", item.line.code, item.line, code=item.line.procedure, drug=item.drug.name,
            indication=item.drug.indication, diagnoses=", ".join(d.dotted for d in icd10),
            other=other.name, other_indication=other.indication, likely=likely)


def _not_pointed(item: DrugLine, pointable: dict[int, Diagnosis], indicated: list[Diagnosis], out: Findings) -> None:
    line = item.line
    pointed = []
    for p in line.pointers:
        if is_digits(p.value):
            diagnosis = pointable.get(int(p.value))
            if diagnosis is not None:
                if diagnosis in indicated:
                    return  # (most drug lines: their first pointer names the indication)
                pointed.append(diagnosis)
    target = next((d for d in indicated if d.position), None)
    if target is None:
        return
    fix = None
    if line.procedure_segment is not None and len(line.pointers) < MAX_POINTERS:
        d = out.delimiters
        elements = line.procedure_segment.text.split(d.element)
        current = elements[7] if len(elements) > 7 else ""
        value = d.component.join([p for p in current.split(d.component) if p] + [str(target.position)])
        fix = out.set_element(line.procedure_segment, 7, value, shown=value)
    where = line.pointers[0] if line.pointers else line.code
    out.add("D003", where, line, fix=fix, lx=line.line_number or "?", code=line.procedure,
            pointed=", ".join(d.dotted for d in pointed) or "no diagnosis",
            indication=target.dotted, position=target.position)
