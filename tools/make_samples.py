"""Write the synthetic claim files in edi_samples/ (no real patient data) and their README.

    python tools/make_samples.py            # write edi_samples/*.837 and edi_samples/README.md

Each defect claim is built to break one rule; its claim id says which. The README's last
column is what the scrubber actually says about the claim, so run this again after a rule's
wording changes (tests/test_samples.py fails until you do).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "edi_samples"

TODAY = "2026-11-27"  # the date the README's findings are checked against (S004)
BELINOSTAT_NDC = "72893000201"
BELANTAMAB_NDC = "00173089601"


@dataclass
class Line:
    code: str = "J9032"
    modifiers: tuple[str, ...] = ()
    charge: str = "100"
    units: str = "10"
    pointers: str = "1"
    date: str = "20261102"
    ndc: str | None = None  # LIN03; None for no 2410 loop
    ndc_qualifier: str = "N4"
    quantity: str | None = None  # CTP04
    unit: str = "ME"  # CTP05-01
    revenue: str = "0636"  # 837I only
    unit_basis: str = "UN"
    prior_auth: str | None = None
    description: str | None = None  # SV101-07 / SV202-07, after four modifier places
    date_end: str | None = None  # a DTP*472 RD8 span to this date when set
    extra: tuple[str, ...] = ()  # raw segments after the line's DTP (PWK, NTE, ...)


@dataclass
class Claim:
    claim_id: str
    wrong: str  # what is wrong, for the README ("" for a clean claim)
    lines: list[Line]
    payer_class: str = "MB"
    payer: tuple[str, str] = ("MEDICARE PART B", "00952")
    diagnoses: tuple[str, ...] = ("ABK:C8440",)
    total: str | None = None  # CLM02; the sum of the lines when None
    prior_auth: str | None = None
    subscriber: str = "DOE*JANE"
    patient: str | None = None  # a dependent patient loop (HL 23) when set
    extra_2300: tuple[str, ...] = ()  # raw segments after HI, e.g. a 2310B loop
    dmg: str = "F"
    member: str | None = None  # the subscriber id; claims with the same one are the same patient
    facility: str | None = None  # CLM05-01: place of service (837P, default 11) or bill type digits (837I, 13)
    frequency: str = "1"  # CLM05-03
    attachment: str | None = None  # a 2300 PWK segment (its place in the loop: after CLM / CL1)


def _seg(*elements: str) -> str:
    return "*".join(elements) + "~\n"


def _modifiers(line: Line) -> str:
    parts = ["HC", line.code, *line.modifiers]
    if line.description is not None:
        parts += [""] * (6 - len(parts)) + [line.description]
    return ":".join(parts)


def professional_claim(claim: Claim) -> list[str]:
    total = claim.total or _sum(claim)
    clm05 = f"{claim.facility or '11'}:B:{claim.frequency}"
    segments = [_seg("CLM", claim.claim_id, total, "", "", clm05, "Y", "A", "Y", "Y")]
    if claim.attachment:
        segments.append(claim.attachment + "\n")
    if claim.prior_auth:
        segments.append(_seg("REF", "G1", claim.prior_auth))
    segments.append(_seg("HI", *claim.diagnoses))
    segments.extend(claim.extra_2300)
    for number, line in enumerate(claim.lines, start=1):
        segments.append(_seg("LX", str(number)))
        segments.append(_seg("SV1", _modifiers(line), line.charge, line.unit_basis, line.units, "", "", line.pointers))
        segments.extend(_service_date(line))
        if line.prior_auth:
            segments.append(_seg("REF", "G1", line.prior_auth))
        segments.extend(_drug_identification(line))
    return segments


def institutional_claim(claim: Claim) -> list[str]:
    total = claim.total or _sum(claim)
    first = min(line.date for line in claim.lines if line.date)
    last = max(line.date_end or line.date for line in claim.lines if line.date)
    segments = [
        _seg("CLM", claim.claim_id, total, "", "", f"{claim.facility or '13'}:A:{claim.frequency}", "", "A", "Y", "Y"),
        _seg("DTP", "434", "RD8", f"{first}-{last}"),
        _seg("CL1", "3", "1", "01"),
    ]
    if claim.attachment:
        segments.append(claim.attachment + "\n")
    if claim.prior_auth:
        segments.append(_seg("REF", "G1", claim.prior_auth))
    segments.append(_seg("HI", *claim.diagnoses))
    segments.extend(claim.extra_2300)
    segments.append(_seg("NM1", "71", "1", "SMITH", "ALEX", "", "", "", "XX", "1245319599"))
    for number, line in enumerate(claim.lines, start=1):
        segments.append(_seg("LX", str(number)))
        segments.append(_seg("SV2", line.revenue, _modifiers(line), line.charge, line.unit_basis, line.units))
        segments.extend(_service_date(line))
        segments.extend(_drug_identification(line))
    return segments


def _service_date(line: Line) -> list[str]:
    """DTP*472 (a day, or a span with date_end), then the line's extra segments."""
    dates = []
    if line.date_end:
        dates = [_seg("DTP", "472", "RD8", f"{line.date}-{line.date_end}")]
    elif line.date:
        dates = [_seg("DTP", "472", "D8", line.date)]
    return dates + [s if s.endswith("\n") else s + "\n" for s in line.extra]


def _drug_identification(line: Line) -> list[str]:
    if line.ndc is None:
        return []
    segments = [_seg("LIN", "", line.ndc_qualifier, line.ndc)]
    if line.quantity is not None:
        segments.append(_seg("CTP", "", "", "", line.quantity, line.unit))
    return segments


def _sum(claim: Claim) -> str:
    from decimal import Decimal

    total = sum((Decimal(line.charge) for line in claim.lines), Decimal(0))
    return format(total.normalize(), "f")


@dataclass
class SampleFile:
    name: str
    kind: str  # 837P or 837I
    title: str
    claims: list[Claim] = field(default_factory=list)
    # Claims that share one subscriber loop, by claim id (the rest get their own).
    shared_subscriber: tuple[str, ...] = ()


def render(sample: SampleFile, control: int) -> str:
    version = "005010X222A1" if sample.kind == "837P" else "005010X223A2"
    body = [
        _seg("BHT", "0019", "00", f"BATCH{control:04d}", "20261120", "1200", "CH"),
        _seg("NM1", "41", "2", "EXAMPLE ONCOLOGY BILLING", "", "", "", "", "46", "SUBMIT001"),
        _seg("PER", "IC", "BILLING DESK", "TE", "5555550100"),
        _seg("NM1", "40", "2", "EXAMPLE CLEARINGHOUSE", "", "", "", "", "46", "RECV001"),
        _seg("HL", "1", "", "20", "1"),
        _seg("NM1", "85", "2", "EXAMPLE ONCOLOGY ASSOCIATES", "", "", "", "", "XX", "1234567893"),
        _seg("N3", "100 MAIN STREET"),
        _seg("N4", "SPRINGFIELD", "IL", "627010001"),
        _seg("REF", "EI", "123456789"),
    ]
    hl = 1
    build = professional_claim if sample.kind == "837P" else institutional_claim
    shared_hl: int | None = None
    for index, claim in enumerate(sample.claims):
        in_shared = claim.claim_id in sample.shared_subscriber
        if not (in_shared and shared_hl is not None):
            hl += 1
            subscriber_hl = hl
            if in_shared:
                shared_hl = hl
            has_patient = claim.patient is not None
            body.append(_seg("HL", str(hl), "1", "22", "1" if has_patient else "0"))
            relation = "" if has_patient else "18"
            body.append(_seg("SBR", "P", relation, "GRP0001", "", "", "", "", "", claim.payer_class))
            last, first = claim.subscriber.split("*")
            member = claim.member or f"MBR{index + 1:06d}"
            body.append(_seg("NM1", "IL", "1", last, first, "", "", "", "MI", member))
            body.append(_seg("N3", "1 ELM STREET"))
            body.append(_seg("N4", "SPRINGFIELD", "IL", "62701"))
            if not has_patient:
                body.append(_seg("DMG", "D8", "19550101", claim.dmg))
            body.append(_seg("NM1", "PR", "2", claim.payer[0], "", "", "", "", "PI", claim.payer[1]))
            if has_patient:
                hl += 1
                body.append(_seg("HL", str(hl), str(subscriber_hl), "23", "0"))
                body.append(_seg("PAT", "19"))
                last, first = claim.patient.split("*")  # type: ignore[union-attr]
                body.append(_seg("NM1", "QC", "1", last, first))
                body.append(_seg("N3", "1 ELM STREET"))
                body.append(_seg("N4", "SPRINGFIELD", "IL", "62701"))
                body.append(_seg("DMG", "D8", "20100101", "M"))
        body.extend(build(claim))
    st = _seg("ST", "837", f"{control:04d}", version)
    count = len(body) + 2
    isa = (
        f"ISA*00*          *00*          *ZZ*{'SUBMIT001':<15}*ZZ*{'RECV001':<15}*261120*1200*^*00501*"
        f"{control:09d}*0*T*:~\n"
    )
    gs = _seg("GS", "HC", "SUBMIT001", "RECV001", "20261120", "1200", str(control), "X", version)
    trailer = [_seg("SE", str(count), f"{control:04d}"), _seg("GE", "1", str(control)),
               _seg("IEA", "1", f"{control:09d}")]
    return isa + gs + st + "".join(body) + "".join(trailer)


# --- the samples -------------------------------------------------------------------------------

PA = "PA20261101"
COMMERCIAL = {"payer_class": "CI", "payer": ("EXAMPLE HEALTH PLAN", "EHP01"), "prior_auth": PA}
MEDICAID = {"payer_class": "MC", "payer": ("STATE MEDICAID", "SMCD1")}
BLUE = {"payer_class": "BL", "payer": ("EXAMPLE BLUE PLAN", "EXBLUE01"), "prior_auth": PA}
GIVEN = {"ndc": BELINOSTAT_NDC, "quantity": "1800"}  # 1,000 mg/m2 x 1.8 m2
WORKED_EXAMPLE = [Line(units="180", charge="9445.32", **GIVEN),
                  Line(modifiers=("JW",), units="20", charge="1049.48", ndc=BELINOSTAT_NDC, quantity="200")]

CLEAN_837P = SampleFile("clean_837p.837", "837P", "Clean professional claims: every one is accepted as is", [
    Claim("P-OK-MEDICARE-JW", "", WORKED_EXAMPLE),
    Claim("P-OK-MEDICARE-JZ", "", [Line(modifiers=("JZ",), units="200", charge="10494.80",
                                        ndc=BELINOSTAT_NDC, quantity="2000")]),
    Claim("P-OK-COMMERCIAL", "", [Line(modifiers=("JZ",), units="150", charge="7871.10"),
                                  Line(code="96413", charge="280", units="1")], **COMMERCIAL),
    Claim("P-OK-MEDICAID", "", [Line(units="165", charge="8658.21", ndc=BELINOSTAT_NDC, quantity="1650"),
                                Line(modifiers=("JW",), units="35", charge="1836.59", ndc=BELINOSTAT_NDC,
                                     quantity="350")], **MEDICAID),
    Claim("P-OK-DEPENDENT", "", [Line(modifiers=("JZ",), units="100", charge="5247.40")],
          patient="DOE*SAM", **COMMERCIAL),
    Claim("P-OK-CHEMO-Z51", "", [Line(modifiers=("JZ",), units="200", charge="10494.80", pointers="1:2")],
          diagnoses=("ABK:Z5111", "ABF:C8440")),
    Claim("P-OK-NO-DRUG", "", [Line(code="99214", charge="150", units="1")], diagnoses=("ABK:E119",)),
])

DEFECTS_837P = SampleFile("defects_837p.837", "837P", "Professional claims with one defect each", [
    Claim("P-U001-ZERO-UNITS", "J9032 billed with 0 units", [Line(modifiers=("JZ",), units="0")]),
    Claim("P-U002-FRACTION", "199.5 units: a fraction", [Line(modifiers=("JZ",), units="199.5", charge="10468.56",
                                                               ndc=BELINOSTAT_NDC, quantity="1995")]),
    Claim("P-U003-MG-AS-UNITS", "1800 units for 1,800 mg: milligrams entered as units",
          [Line(units="1800", charge="9445.32", ndc=BELINOSTAT_NDC, quantity="1800"),
           Line(modifiers=("JW",), units="20", charge="1049.48", ndc=BELINOSTAT_NDC, quantity="200")]),
    Claim("P-U004-DOSE-MISMATCH", "150 units but the NDC quantity says 1,800 mg (180 units)",
          [Line(modifiers=("JZ",), units="150", charge="9445.32", ndc=BELINOSTAT_NDC, quantity="1800")]),
    Claim("P-U005-JW-WHOLE-VIAL", "JW line discards 600 mg, more than a 500 mg vial",
          [Line(units="140", charge="7346.36", ndc=BELINOSTAT_NDC, quantity="1400"),
           Line(modifiers=("JW",), units="60", charge="3148.44", ndc=BELINOSTAT_NDC, quantity="600")]),
    Claim("P-U006-VIALS", "1,800 mg given + 300 mg discarded = 2,100 mg: more discarded than the 4 vials left",
          [Line(units="180", charge="9445.32", ndc=BELINOSTAT_NDC, quantity="1800"),
           Line(modifiers=("JW",), units="30", charge="1574.22", ndc=BELINOSTAT_NDC, quantity="300")]),
    Claim("P-U010-VIAL-SHARED", "1,800 mg given + 150 mg discarded: less than the 200 mg left (vial shared?)",
          [Line(units="180", charge="9445.32", ndc=BELINOSTAT_NDC, quantity="1800"),
           Line(modifiers=("JW",), units="15", charge="787.11", ndc=BELINOSTAT_NDC, quantity="150")]),
    Claim("P-U011-JZ-PART-VIAL", "JZ on 180 units (1,800 mg = 3.6 vials of 500 mg): JW line missing, or vial shared",
          [Line(modifiers=("JZ",), units="180", charge="9445.32")]),
    Claim("P-U007-CEILING", "2,500 units on one day, above the 300-unit label ceiling",
          [Line(modifiers=("JZ",), units="2500", charge="13118.50")]),
    Claim("P-M001-NO-JW-JZ", "Medicare J9032 line with neither JW nor JZ", [Line(units="200", charge="10494.80")]),
    Claim("P-M002-JW-AND-JZ", "JW and JZ on the discard line",
          [Line(units="180", charge="9445.32"), Line(modifiers=("JW", "JZ"), units="20", charge="1049.48")]),
    Claim("P-M003-JB-ROUTE", "JB (subcutaneous) on belinostat, an IV drug",
          [Line(modifiers=("JB", "JZ"), units="200", charge="10494.80")]),
    Claim("P-M004-JZ-2022", "JZ on a 2022 service, before JZ existed",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", date="20221103")], **COMMERCIAL),
    Claim("P-M005-JZ-TWICE", "JZ twice on one line", [Line(modifiers=("JZ", "JZ"), units="200", charge="10494.80")]),
    Claim("P-D001-POINTER", "diagnosis pointer 3, but the claim has two diagnoses",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", pointers="1:3")],
          diagnoses=("ABK:C8440", "ABF:E119")),
    Claim("P-D002-NO-INDICATION", "J9032 (belinostat, for PTCL) on a claim whose only diagnosis is a B-cell lymphoma",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C8330",)),
    Claim("P-D004-MYELOMA-ONLY", "J9032 (belinostat) with only a multiple myeloma diagnosis: belantamab's",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C9000",)),
    Claim("P-D003-Z51-ONLY", "the drug line points only at Z51.11; the lymphoma is diagnosis 2",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", pointers="1")],
          diagnoses=("ABK:Z5111", "ABF:C8440")),
    Claim("P-C001-C9442-IN-2026", "C9442 (belinostat, 2015 only) billed for a 2026 service",
          [Line(code="C9442", modifiers=("JZ",), units="200", charge="10494.80")]),
    Claim("P-C002-UNKNOWN-HCPCS", "J9018 is not a HCPCS code (on a 2025 service, inside the table's dates)",
          [Line(code="J9018", modifiers=("JZ",), units="10", charge="100", date="20251103")]),
    Claim("P-C003-OLD-CODE", "J1565 on a 2013 service: older than the HCPCS table's coverage",
          [Line(code="J1565", units="1", charge="100", date="20130610")], diagnoses=("ABK:E119",)),
    Claim("P-C004-CATEGORY", "C84.4 is a category, not a billable code",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C844",)),
    Claim("P-C005-NOT-A-CODE", "C84.4Z is not an ICD-10-CM code (service in the table's year)",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", date="20260914")],
          diagnoses=("ABK:C8440", "ABF:C844Z"), ),
    Claim("P-C006-NEWER-CODE", "C84.4B is unknown to the April 2026 table, on a service after it",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C8440", "ABF:C844B")),
    Claim("P-C007-ICD9", "ICD-9-CM diagnosis (BK 2024) on a 2026 service",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("BK:2024",)),
    Claim("P-N001-NDC-10-DIGITS", "LIN03 has 10 digits and no hyphens",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", ndc="7289300201", quantity="2000")]),
    Claim("P-N002-NDC-HYPHENS", "NDC 72893-002-01 in its 5-3-2 package form",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", ndc="72893-002-01", quantity="2000")]),
    Claim("P-N003-BELANTAMAB-NDC", "belantamab's NDC (Blenrep) on a J9032 line",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", ndc=BELANTAMAB_NDC, quantity="2000")]),
    Claim("P-N004-MEDICAID-NO-NDC", "Medicaid drug line without an NDC",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], **MEDICAID),
    Claim("P-N005-NDC-QUANTITY", "NDC quantity CTP04 is 0",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", ndc=BELINOSTAT_NDC, quantity="0")]),
    Claim("P-A001-NO-AUTH", "Example Blue Plan (its own policy) J9032 claim without prior authorization",
          [Line(modifiers=("JZ", "KX"), units="200", charge="10494.80")],
          payer_class="BL", payer=("EXAMPLE BLUE PLAN", "EXBLUE01")),
    Claim("P-A002-NO-AUTH", "commercial J9032 claim without prior authorization (class default)",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")],
          payer_class="CI", payer=("EXAMPLE HEALTH PLAN", "EHP01")),
    Claim("P-D005-BLUE-NOT-COVERED", "Example Blue Plan lists what it covers for J9032; B-cell lymphoma is not on it",
          [Line(modifiers=("JZ", "KX"), units="200", charge="10494.80")], diagnoses=("ABK:C8330",), **BLUE),
    Claim("P-B001-TOTAL", "CLM02 is 10000.00; the lines add up to 10494.80",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], total="10000.00"),
    Claim("P-S001-UNIT-BASIS", "SV103 unit basis XX is not a code the guide allows",
          [Line(code="99214", units="1", charge="150", unit_basis="XX")]),
    Claim("P-S002-NON-ASCII", "a rendering provider name with a non-ASCII byte (0xC9)",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")],
          extra_2300=("NM1*82*1*REN\xc9*ANNE****XX*1245319599~\n",)),
    Claim("P-S003-EMPTY-SEGMENT", "an empty segment (~~) inside the claim",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], extra_2300=("~\n",)),
    Claim("P-S004-FUTURE-DATE", "a service dated 2099-01-04",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", date="20990104")]),
    Claim("P-S005-AFTER-CREATION", "a service on 2026-11-24, after the claim was created (BHT04 2026-11-20)",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", date="20261124")]),
    Claim("P-B002-OVER-99999", "a Medicare line charge of 100000.00: more than 99,999.99",
          [Line(modifiers=("JZ",), units="200", charge="100000.00")]),
    Claim("P-C009-BELANTAMAB-2026", "J9037 (belantamab) for a 2026 service: no code is established after 2025-10-23",
          [Line(code="J9037", modifiers=("JZ",), units="400", charge="9000")], diagnoses=("ABK:C9002",)),
    Claim("P-C010-NPI", "rendering provider NPI 1234567890: its check digit should be 3",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")],
          extra_2300=("NM1*82*1*RENDER*ANNE****XX*1234567890~\n",)),
    Claim("P-M006-NO-KX", "Example Blue Plan requires KX on J9032",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], **BLUE),
    Claim("P-M007-TB-NOT-ASKED", "TB (340B) for a commercial payer that does not ask for it",
          [Line(modifiers=("JZ", "TB"), units="200", charge="10494.80")], **COMMERCIAL),
    Claim("P-M004-JG-2026", "JG (340B) on a 2026 service: JG was terminated 2024-12-31",
          [Line(modifiers=("JZ", "JG"), units="200", charge="10494.80")]),
    Claim("P-M008-FIVE-MODIFIERS", "five modifiers: the fifth (KX) lands in SV101-07",
          [Line(modifiers=("JZ", "JA", "GA", "GY"), description="KX", units="200", charge="10494.80")]),
    Claim("P-U008-WINDOW-A", "(first claim of the patient: days 1-3, 900 units; goes out)",
          [Line(modifiers=("JZ", "KX"), units="300", charge="15742.20", date=f"2026110{d}") for d in (2, 3, 4)],
          member="BLUE0001", **BLUE),
    Claim("P-U008-WINDOW-B", "days 4-5 bring the patient to 1,500 units in 21 days; Example Blue Plan allows 1,250",
          [Line(modifiers=("JZ", "KX"), units="300", charge="15742.20", date=f"2026110{d}") for d in (5, 6)],
          member="BLUE0001", **BLUE),
    Claim("P-U009-CYCLE-A", "(first claim of the patient: days 1-3; goes out)",
          [Line(modifiers=("JZ",), units="100", charge="5247.40", date=f"2026110{d}") for d in (2, 3, 4)],
          member="CYCLE001"),
    Claim("P-U009-CYCLE-B", "days 4-6: a sixth administration day within 21 days",
          [Line(modifiers=("JZ",), units="100", charge="5247.40", date=f"2026110{d}") for d in (5, 6, 7)],
          member="CYCLE001"),
    Claim("P-S001-SHARED-A", "subscriber loop shared with P-S001-SHARED-B has DMG03 Q, not a gender code",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], dmg="Q"),
    Claim("P-S001-SHARED-B", "under the same subscriber loop as P-S001-SHARED-A",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")]),
], shared_subscriber=("P-S001-SHARED-A", "P-S001-SHARED-B"))

CLEAN_837I = SampleFile("clean_837i.837", "837I", "Clean institutional (outpatient hospital) claims", [
    Claim("I-OK-MEDICARE", "", [Line(units="180", charge="9445.32", **GIVEN),
                                Line(modifiers=("JW",), units="20", charge="1049.48", ndc=BELINOSTAT_NDC,
                                     quantity="200")]),
    Claim("I-OK-COMMERCIAL", "", [Line(modifiers=("JZ",), units="200", charge="10494.80")], **COMMERCIAL),
])

DEFECTS_837I = SampleFile("defects_837i.837", "837I", "Institutional claims with one defect each", [
    Claim("I-C008-REVENUE-0250", "J9032 under revenue code 0250 (packaged drugs), not 0636",
          [Line(modifiers=("JZ",), units="200", charge="10494.80", revenue="0250")]),
    Claim("I-D002-NO-INDICATION", "J9032 on a claim whose only diagnosis is a B-cell lymphoma",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C8330",)),
    Claim("I-D004-MYELOMA-ONLY", "J9032 on a claim whose only diagnosis is multiple myeloma",
          [Line(modifiers=("JZ",), units="200", charge="10494.80")], diagnoses=("ABK:C9000",)),
    Claim("I-M007-340B-NOT-ASKED", "TB (340B) for a payer that does not ask for 340B modifiers",
          [Line(modifiers=("JZ", "TB"), units="200", charge="10494.80")], **COMMERCIAL),
    Claim("I-U003-MG-AS-UNITS", "2000 units for 2,000 mg: milligrams entered as units",
          [Line(modifiers=("JZ",), units="2000", charge="10494.80", ndc=BELINOSTAT_NDC, quantity="2000")]),
    Claim("I-B001-TOTAL", "CLM02 does not add up", [Line(modifiers=("JZ",), units="200", charge="10494.80")],
          total="10494.00"),
])

# --- every drug in CMS's files (issue 10): real rows of the ASP crosswalk, January 2026 -----------
# Billing units per item from the crosswalk: Rituxan 50242-0053-06 50 units (500 mg) and 50242-0051-21
# 10 units (100 mg) of J9312; Truxima 63459-0104-50 50 units of Q5115; bortezomib 00143-9098-01 35 units
# (3.5 mg) of J9041; Keytruda 00006-3026-02 100 units of J9271; Aranesp 55513-0005-04 100 units (mcg) of
# J0881; Botox 00023-1145-01 100 units of J0585; normal saline 00264-5802-10 2 units (250 mL) of J7050;
# Privigen 44206-0438-20 40 units (500 mg) of J1459.

CMS_DAY = "20260115"  # inside the newest ASP quarter shipped (January 2026)
MUE_DAY = "20261102"  # inside the MUE table shipped (October 2026)
RITUXAN_500, RITUXAN_100, TRUXIMA_500 = "50242005306", "50242005121", "63459010450"
BORTEZOMIB, KEYTRUDA, ARANESP = "00143909801", "00006302602", "55513000504"
BOTOX, SALINE, PRIVIGEN = "00023114501", "00264580210", "44206043820"
CARBOPLATIN = "00703423901"  # 600 mg: 12 units of J9045 (per 50 mg)
LYMPHOMA = ("ABK:C8330",)  # diffuse large B-cell lymphoma: not belinostat's indication, and no J9032 here
MYELOMA = ("ABK:C9000",)


def _drug(code: str, units: str, charge: str, ndc: str | None = None, quantity: str | None = None,
          unit: str = "ME", modifiers: tuple[str, ...] = (), date: str = CMS_DAY, revenue: str = "0636") -> Line:
    return Line(code=code, modifiers=modifiers, units=units, charge=charge, ndc=ndc, quantity=quantity, unit=unit,
                date=date, revenue=revenue)


def clean_multi_drug_837p() -> list[Claim]:
    """An oncology day: rituximab over two vial sizes with its discard, bortezomib per 0.1 mg,
    pembrolizumab counted in vials, the antiemetic, a code in micrograms, one in units, one in mL."""
    return [
        Claim("P-OK-MULTI-DRUG", "", [
            _drug("J9312", "68", "10200.00", RITUXAN_500, "675", modifiers=("JA",)),  # 375 mg/m2 x 1.8 m2
            _drug("J9312", "2", "300.00", RITUXAN_100, "25", modifiers=("JW",)),  # 500 + 100 + 100 opened
            _drug("J9041", "24", "130.00", BORTEZOMIB, "2.34"),  # 1.3 mg/m2 x 1.8 m2, per 0.1 mg
            _drug("J9041", "11", "60.00", BORTEZOMIB, "1.16", modifiers=("JW",)),  # of one 3.5 mg vial
            _drug("J9271", "200", "24000.00", KEYTRUDA, "2", unit="UN", modifiers=("JZ",)),  # two 100 mg vials
            _drug("J2405", "8", "12.00", "00409475503", "8"),  # ondansetron 8 mg
            _drug("J0881", "100", "604.00", ARANESP, "0.1", modifiers=("JZ",)),  # 100 mcg
            _drug("J0585", "100", "1302.00", BOTOX, "100", unit="F2", modifiers=("JZ",)),  # 100 units
            _drug("J7050", "2", "10.00", SALINE, "500", unit="ML"),  # 500 mL, per 250 mL
        ], diagnoses=("ABK:C8330", "ABF:C9000")),
        Claim("P-OK-BIOSIMILAR-IG", "", [
            _drug("Q5115", "50", "3100.00", TRUXIMA_500, "500", modifiers=("JZ",)),  # rituximab-abbs
            _drug("J1459", "60", "6100.00", PRIVIGEN, "30", unit="GR"),  # 30 g immune globulin, per 500 mg
            _drug("C9460", "60", "900.00"),  # cangrelor, per 1 mg: a C9 code, no NDC in the crosswalk
        ]),
    ]


def defect_multi_drug_837p() -> list[Claim]:
    return [
        Claim("P-N006-REFERENCE-NDC", "Rituxan's NDC (J9312) on a Q5115 (Truxima, a rituximab biosimilar) line",
              [_drug("Q5115", "50", "3100.00", RITUXAN_500, "500", modifiers=("JZ",))], diagnoses=LYMPHOMA),
        Claim("P-N007-NDC-NOT-CROSSWALKED", "an NDC package the crosswalk does not list for J9271",
              [_drug("J9271", "200", "24000.00", "00006302699", "200", modifiers=("JZ",))], diagnoses=LYMPHOMA),
        Claim("P-N008-NDC-AFTER-DATA", "the same NDC on a service after the newest crosswalk quarter",
              [_drug("J9271", "200", "24000.00", "00006302699", "200", modifiers=("JZ",), date="20261102")],
              diagnoses=LYMPHOMA),
        Claim("P-U024-MG-AS-UNITS",
              "600 units of J9045 (carboplatin, per 50 mg) for 600 mg: above the MUE, so 12 is certain",
              [_drug("J9045", "600", "80.00", CARBOPLATIN, "600")], diagnoses=LYMPHOMA),
        Claim("P-U016-OXALIPLATIN-MG", "153 units of J9263 (per 0.5 mg) for 153 mg: the fix (306) is not certain",
              [_drug("J9263", "153", "40.00", "00703398601", "153")], diagnoses=("ABK:C189",)),
        Claim("P-U017-VIALS", "300 units of J9271 from two 100-unit vials (CTP04 2 UN)",
              [_drug("J9271", "300", "36000.00", KEYTRUDA, "2", unit="UN", modifiers=("JZ",))], diagnoses=LYMPHOMA),
        Claim("P-U017-DOSE", "60 units of Q5115 for 700 mg (70 units)",
              [_drug("Q5115", "60", "3700.00", TRUXIMA_500, "700")], diagnoses=LYMPHOMA),
        Claim("P-U018-JW-WHOLE-VIAL", "a JW line discarding a whole 100 mg pembrolizumab vial", [
            _drug("J9271", "150", "18000.00", KEYTRUDA, "150"),
            _drug("J9271", "100", "12000.00", KEYTRUDA, "100", modifiers=("JW",)),
        ], diagnoses=LYMPHOMA),
        Claim("P-U019-VIALS-NOT-WHOLE", "150 units of J9271 with JZ: not a whole number of 100 mg vials",
              [_drug("J9271", "150", "18000.00", KEYTRUDA, "150", modifiers=("JZ",))], diagnoses=LYMPHOMA),
        Claim("P-U020-BELOW-ASP", "200 units of J9271 charged below 200 x the ASP payment limit",
              [_drug("J9271", "200", "10000.00", KEYTRUDA, "200", modifiers=("JZ",))], diagnoses=LYMPHOMA),
        Claim("P-U021-FAR-ABOVE-ASP", "10 units of J9312 charged at 27 times the ASP payment limit",
              [_drug("J9312", "10", "20000.00", RITUXAN_100, "100", modifiers=("JZ",))], diagnoses=LYMPHOMA),
    ]


def clean_multi_drug_837i() -> list[Claim]:
    return [
        Claim("I-OK-MULTI-DRUG", "", [
            _drug("J9312", "70", "10500.00", RITUXAN_500, "700", modifiers=("JA", "JZ"), date=MUE_DAY),
            _drug("J9041", "35", "190.00", BORTEZOMIB, "3.5", modifiers=("JZ",), date=MUE_DAY, revenue="0250"),
            _drug("J9271", "200", "24000.00", KEYTRUDA, "2", unit="UN", modifiers=("JZ",), date=MUE_DAY),
            _drug("Q5115", "50", "3100.00", TRUXIMA_500, "500", modifiers=("JZ",), date=MUE_DAY),
            _drug("J2405", "8", "12.00", "00409475503", "8", date=MUE_DAY, revenue="0250"),
        ], diagnoses=LYMPHOMA),
    ]


def defect_multi_drug_837i() -> list[Claim]:
    return [
        Claim("I-U022-MUE", "200 units of J9312 on one day: the outpatient-hospital MUE is 150 (MAI 3)",
              [_drug("J9312", "200", "30000.00", RITUXAN_500, "2000", modifiers=("JZ",), date=MUE_DAY)],
              diagnoses=LYMPHOMA),
        Claim("I-U022-MUE-LINE", "5 units of J0716 on one line: the MUE is 4 a line (MAI 1)",
              [_drug("J0716", "5", "20000.00", date=MUE_DAY)], diagnoses=("ABK:T632X1A",)),
        Claim("I-U023-MUE-LINES", "3 + 2 units of J0716 on two lines of one day: 4 a line (MAI 1)", [
            _drug("J0716", "3", "12000.00", date=MUE_DAY),
            _drug("J0716", "2", "8000.00", date=MUE_DAY),
        ], diagnoses=("ABK:T632X1A",)),
    ]


DRUGS_837P = SampleFile("drugs_837p.837", "837P",
                        "Several drugs a claim, on real rows of CMS's files: clean claims, then one defect each",
                        clean_multi_drug_837p() + defect_multi_drug_837p())
DRUGS_837I = SampleFile("drugs_837i.837", "837I",
                        "Several drugs a claim, on real rows of CMS's files: a clean claim, then one defect each",
                        clean_multi_drug_837i() + defect_multi_drug_837i())

ALL = (CLEAN_837P, DEFECTS_837P, CLEAN_837I, DEFECTS_837I, DRUGS_837P, DRUGS_837I)


def sample_files() -> dict[str, bytes]:
    return {sample.name: render(sample, control).encode("latin-1") for control, sample in enumerate(ALL, start=101)}


def write_samples() -> None:
    for name, data in sample_files().items():
        (SAMPLES / name).write_bytes(data)


def scrubber_says(sample: SampleFile) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "scrubber", "scrub", str(SAMPLES / sample.name), "--out", out,
                        "--today", TODAY], capture_output=True, check=False)
        report = json.loads((Path(out) / f"{Path(sample.name).stem}.report.json").read_text())
    return {c["claim_id"]: c for c in report["claims"]}


def readme_text() -> str:
    lines = [
        "# Sample claim files",
        "",
        "Synthetic 837 files (no real patient data: names, ids and NPIs are made up) for trying the",
        "scrubber and for its tests. Written by `python tools/make_samples.py`; the last column is what",
        "the scrubber says, taken from its JSON report.",
        "",
        "J9032 is belinostat, 10 mg a unit. The clean claims follow the worked example of",
        "`drug-lines.md`: 1,000 mg/m2 x 1.8 m2 = 1,800 mg = 180 units, four 500 mg vials, 200 mg",
        "discarded on a JW line of 20 units.",
    ]
    for sample in ALL:
        said = scrubber_says(sample)
        lines += ["", f"## `{sample.name}` ({sample.kind}): {sample.title}", "",
                  "| claim id | what is wrong | disposition | what the scrubber says |", "|---|---|---|---|"]
        for claim in sample.claims:
            result = said.get(claim.claim_id, {"disposition": "?", "findings": []})
            says = "<br>".join(
                f"{f['rule']} {f['severity']}{' (fixed)' if f['fixed'] else ''}: {f['message']}"
                for f in result["findings"]
            ) or "nothing"
            wrong = claim.wrong or "nothing (clean)"
            lines.append(f"| {claim.claim_id} | {wrong} | {result['disposition']} | {says.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    write_samples()
    (SAMPLES / "README.md").write_text(readme_text(), encoding="utf-8")
    print(f"wrote {len(ALL)} sample files and {SAMPLES / 'README.md'}")
