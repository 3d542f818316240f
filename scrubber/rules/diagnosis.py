"""Diagnoses: pointers that name a diagnosis, and drug lines tied to the drug's indication."""

from __future__ import annotations

from ..model.claim import Claim, Diagnosis
from .findings import Findings
from .lines import DrugLine, profiled_lines
from .ruleset import RuleSet

RULES = ("D001", "D002", "D003")

MAX_POINTERS = 4  # SV107-01 .. SV107-04


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    pointable = {d.position: d for d in claim.diagnoses if d.position}
    if not claim.is_institutional:
        for line in claim.lines:
            for pointer in line.pointers:
                if not pointer.value.isdigit() or int(pointer.value) not in pointable:
                    out.add("D001", pointer, line, pointer=pointer.value, lx=line.line_number or "?",
                            count=len(pointable))
    # Indications are ICD-10-CM; a claim coded in ICD-9-CM is C007's business.
    if not any(d.is_icd10 for d in claim.coded_diagnoses):
        return
    reported: set[str] = set()
    for item in profiled_lines(claim, rules):
        indicated = [d for d in claim.coded_diagnoses if d.is_icd10 and item.drug.is_indicated_for(d.code.value)]
        if not indicated:
            if claim.is_institutional and item.drug.name in reported:
                continue
            reported.add(item.drug.name)
            _missing(claim, item, out)
        elif not claim.is_institutional:
            _not_pointed(item, pointable, indicated, out)


def _missing(claim: Claim, item: DrugLine, out: Findings) -> None:
    codes = ", ".join(d.dotted for d in claim.coded_diagnoses)
    lead = f" (the claim has {codes})" if codes else ""
    out.add("D002", item.line.code, item.line, code=item.line.procedure, drug=item.drug.name,
            indication=item.drug.indication, codes=item.drug.indication_list, lead=lead)


def _not_pointed(item: DrugLine, pointable: dict[int, Diagnosis], indicated: list[Diagnosis], out: Findings) -> None:
    line = item.line
    pointed = [pointable[int(p.value)] for p in line.pointers if p.value.isdigit() and int(p.value) in pointable]
    if any(d in indicated for d in pointed):
        return
    target = next((d for d in indicated if d.position), None)
    if target is None:
        return
    fix = None
    if line.procedure_segment is not None and len(line.pointers) < MAX_POINTERS:
        d = out.delimiters
        elements = line.procedure_segment.text.split(d.element)
        current = elements[7] if len(elements) > 7 else ""
        value = d.component.join([p for p in current.split(d.component) if p] + [str(target.position)])
        fix = out.set_element(line.procedure_segment, 7, value, "unsafe", shown=value)
    where = line.pointers[0] if line.pointers else line.code
    out.add("D003", where, line, fix=fix, lx=line.line_number or "?", code=line.procedure,
            pointed=", ".join(d.dotted for d in pointed) or "no diagnosis",
            indication=target.dotted, position=target.position)
