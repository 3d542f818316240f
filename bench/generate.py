"""Write a synthetic 837P (005010X222A1) file with N clean claims, for the benchmark.

    python bench/generate.py N OUT.837 [--per-transaction 5000]

No real patient data: names, member ids and NPIs are made up. The segments follow
edi_samples/clean_837p.837; the claims cycle through its clean shapes (Medicare JW pair,
Medicare JZ, commercial with prior authorization, Medicaid with NDCs, a dependent patient,
chemotherapy with Z51.11 first, a claim with no drug) with small variations (claim and member
ids, names, dates of service, doses), so the rules do real work but every claim is accepted.

The claims are split into transaction sets (ST/SE) of at most 5,000 claims each, the
implementation guide's recommended limit, all in one functional group (GS/GE) inside one
interchange (ISA/IEA). HL numbers restart at 1 in each transaction set. The file is written as
it goes (one claim at a time), and the same N always gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TextIO

PER_TRANSACTION = 5000  # claims per transaction set: the guide's recommended maximum
VERSION = "005010X222A1"
SENDER = "SUBMIT001"
RECEIVER = "RECV001"
DATE = "20261120"  # interchange date; services are in the first 19 days of November 2026
TIME = "1200"
ISA_CONTROL = 1
GROUP_CONTROL = 1

BELINOSTAT_NDC = "72893000201"
PRICE_PER_UNIT = Decimal("52.474")  # J9032 charge per 10 mg unit in the sample (10494.80 / 200)

MEDICARE = ("MB", "MEDICARE PART B", "00952")
COMMERCIAL = ("CI", "EXAMPLE HEALTH PLAN", "EHP01")
MEDICAID = ("MC", "STATE MEDICAID", "SMCD1")

# Made-up names: (last, first, gender).
SUBSCRIBERS = [
    ("DOE", "JANE", "F"), ("ROE", "RICHARD", "M"), ("SAMPLE", "ALEX", "M"), ("EXAMPLE", "MARIA", "F"),
    ("TESTER", "CHRIS", "M"), ("PLACEHOLDER", "DANA", "F"), ("MOCK", "LEE", "M"), ("DUMMY", "KIM", "F"),
]
DEPENDENTS = [("DOE", "SAM", "M"), ("ROE", "ANNA", "F"), ("SAMPLE", "JO", "F"), ("EXAMPLE", "LUIS", "M")]


def seg(*elements: str) -> str:
    return "*".join(elements) + "~\n"


def charge(units: int) -> str:
    """The sample's J9032 charge for a number of units, as X12 writes a decimal."""
    return _decimal(PRICE_PER_UNIT * units)


def _decimal(value: Decimal) -> str:
    text = format(value.quantize(Decimal("0.01")).normalize(), "f")
    return text


def service_line(number: int, code: str, amount: str, units: int, pointers: str, date: str,
                 ndc_mg: int | None = None) -> list[str]:
    out = [
        seg("LX", str(number)),
        seg("SV1", code, amount, "UN", str(units), "", "", pointers),
        seg("DTP", "472", "D8", date),
    ]
    if ndc_mg is not None:
        out.append(seg("LIN", "", "N4", BELINOSTAT_NDC))
        out.append(seg("CTP", "", "", "", str(ndc_mg), "ME"))
    return out


def claim_body(i: int) -> tuple[tuple[str, str, str], bool, list[str]]:
    """The payer, whether the patient is a dependent, and the 2300/2400 segments of claim i.

    Seven shapes, after the clean sample; the doses stay whole 500 mg vials (given + discarded)
    and within the daily ceiling, so every claim is accepted as is.
    """
    claim_id = f"C{i + 1:07d}"
    date = f"202611{1 + i % 19:02d}"
    shape = i % 7
    variant = (i // 7) % 3
    auth = f"PA{20260000 + i % 1000000:08d}"
    lines: list[list[str]]
    diagnoses = ["ABK:C8440"]
    prior_auth = None
    dependent = False
    if shape == 0:  # Medicare, worked example: 1,800 mg given + 200 mg discarded on a JW line
        payer = MEDICARE
        given, wasted = [(180, 20), (170, 30), (190, 10)][variant]
        lines = [service_line(1, "HC:J9032", charge(given), given, "1", date, given * 10),
                 service_line(2, "HC:J9032:JW", charge(wasted), wasted, "1", date, wasted * 10)]
    elif shape == 1:  # Medicare, whole vials, nothing discarded (JZ)
        payer = MEDICARE
        units = [200, 150, 100][variant]
        lines = [service_line(1, "HC:J9032:JZ", charge(units), units, "1", date, units * 10)]
    elif shape == 2:  # commercial, prior authorization on the claim, plus the infusion
        payer = COMMERCIAL
        prior_auth = auth
        units = [150, 200, 100][variant]
        lines = [service_line(1, "HC:J9032:JZ", charge(units), units, "1", date),
                 service_line(2, "HC:96413", "280", 1, "1", date)]
    elif shape == 3:  # Medicaid: NDC on every drug line, JW pair
        payer = MEDICAID
        given, wasted = [(165, 35), (180, 20), (140, 10)][variant]
        lines = [service_line(1, "HC:J9032", charge(given), given, "1", date, given * 10),
                 service_line(2, "HC:J9032:JW", charge(wasted), wasted, "1", date, wasted * 10)]
    elif shape == 4:  # commercial, the patient is the subscriber's dependent (HL 23)
        payer = COMMERCIAL
        prior_auth = auth
        dependent = True
        units = [100, 150, 200][variant]
        lines = [service_line(1, "HC:J9032:JZ", charge(units), units, "1", date)]
    elif shape == 5:  # Medicare chemotherapy encounter: Z51.11 first, the lymphoma second
        payer = MEDICARE
        diagnoses = ["ABK:Z5111", "ABF:C8440"]
        units = [200, 100, 150][variant]
        lines = [service_line(1, "HC:J9032:JZ", charge(units), units, "1:2", date)]
    else:  # Medicare office visit, no drug
        payer = MEDICARE
        diagnoses = [["ABK:E119"], ["ABK:I10"], ["ABK:E119", "ABF:I10"]][variant]
        lines = [service_line(1, "HC:99214", "150", 1, "1", date)]
    total = sum((Decimal(line[1].split("*")[2]) for line in lines), Decimal(0))
    body = [seg("CLM", claim_id, _decimal(total), "", "", "11:B:1", "Y", "A", "Y", "Y")]
    if prior_auth:
        body.append(seg("REF", "G1", prior_auth))
    body.append(seg("HI", *diagnoses))
    for line in lines:
        body.extend(line)
    return payer, dependent, body


def claim_segments(i: int, hl: int) -> tuple[list[str], int]:
    """The segments of claim i (its subscriber loop, any patient loop, the claim) and the last
    HL number used; `hl` is the last HL number before it."""
    payer, dependent, body = claim_body(i)
    last, first, gender = SUBSCRIBERS[i % len(SUBSCRIBERS)]
    hl += 1
    subscriber_hl = hl
    out = [
        seg("HL", str(hl), "1", "22", "1" if dependent else "0"),
        seg("SBR", "P", "" if dependent else "18", "GRP0001", "", "", "", "", "", payer[0]),
        seg("NM1", "IL", "1", last, first, "", "", "", "MI", f"MBR{i + 1:07d}"),
        seg("N3", f"{1 + i % 997} ELM STREET"),
        seg("N4", "SPRINGFIELD", "IL", "62701"),
    ]
    if not dependent:
        out.append(seg("DMG", "D8", f"19{40 + i % 40:02d}0{1 + i % 9}{10 + i % 18:02d}", gender))
    out.append(seg("NM1", "PR", "2", payer[1], "", "", "", "", "PI", payer[2]))
    if dependent:
        p_last, p_first, p_gender = DEPENDENTS[i % len(DEPENDENTS)]
        hl += 1
        out += [
            seg("HL", str(hl), str(subscriber_hl), "23", "0"),
            seg("PAT", "19"),
            seg("NM1", "QC", "1", p_last, p_first),
            seg("N3", f"{1 + i % 997} ELM STREET"),
            seg("N4", "SPRINGFIELD", "IL", "62701"),
            seg("DMG", "D8", f"20{i % 15:02d}0{1 + i % 9}{10 + i % 18:02d}", p_gender),
        ]
    return out + body, hl


def transaction_header(control: int) -> list[str]:
    return [
        seg("ST", "837", f"{control:04d}", VERSION),
        seg("BHT", "0019", "00", f"BATCH{control:04d}", DATE, TIME, "CH"),
        seg("NM1", "41", "2", "EXAMPLE ONCOLOGY BILLING", "", "", "", "", "46", SENDER),
        seg("PER", "IC", "BILLING DESK", "TE", "5555550100"),
        seg("NM1", "40", "2", "EXAMPLE CLEARINGHOUSE", "", "", "", "", "46", RECEIVER),
        seg("HL", "1", "", "20", "1"),
        seg("NM1", "85", "2", "EXAMPLE ONCOLOGY ASSOCIATES", "", "", "", "", "XX", "1234567893"),
        seg("N3", "100 MAIN STREET"),
        seg("N4", "SPRINGFIELD", "IL", "627010001"),
        seg("REF", "EI", "123456789"),
    ]


def chunks(claims: int, per_transaction: int, first: int = 0) -> Iterator[range]:
    for start in range(first, first + claims, per_transaction):
        yield range(start, min(start + per_transaction, first + claims))


def write_837(out: TextIO, claims: int, per_transaction: int = PER_TRANSACTION, first: int = 0) -> int:
    """Write the interchange to `out`, claims `first` to `first + claims - 1`; return the number of
    transaction sets."""
    if claims < 1:
        raise ValueError("need at least one claim")
    out.write(
        f"ISA*00*          *00*          *ZZ*{SENDER:<15}*ZZ*{RECEIVER:<15}*{DATE[2:]}*{TIME}*^*00501*"
        f"{ISA_CONTROL:09d}*0*T*:~\n"
    )
    out.write(seg("GS", "HC", SENDER, RECEIVER, DATE, TIME, str(GROUP_CONTROL), "X", VERSION))
    sets = 0
    for sets, block in enumerate(chunks(claims, per_transaction, first), start=1):
        header = transaction_header(sets)
        out.write("".join(header))
        count = len(header)  # ST through the last segment written so far
        hl = 1
        for i in block:
            segments, hl = claim_segments(i, hl)
            out.write("".join(segments))
            count += len(segments)
        out.write(seg("SE", str(count + 1), f"{sets:04d}"))
    out.write(seg("GE", str(sets), str(GROUP_CONTROL)))
    out.write(seg("IEA", "1", f"{ISA_CONTROL:09d}"))
    return sets


def generate(claims: int, path: Path, per_transaction: int = PER_TRANSACTION, first: int = 0) -> int:
    """Write the file to `path` (through a temporary name, so a half-written file never stays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="ascii", newline="", buffering=1 << 20) as out:
        sets = write_837(out, claims, per_transaction, first)
    partial.replace(path)
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("claims", type=int, help="number of claims")
    parser.add_argument("out", type=Path, help="the 837 file to write")
    parser.add_argument("--per-transaction", type=int, default=PER_TRANSACTION,
                        help=f"claims per transaction set (default {PER_TRANSACTION})")
    parser.add_argument("--first", type=int, default=0,
                        help="the number of the first claim (default 0): files generated with "
                             "different ranges have different claims and patients")
    args = parser.parse_args(argv)
    if args.claims < 1 or args.per_transaction < 1 or args.first < 0:
        parser.error("claims and --per-transaction must be positive, --first not negative")
    sets = generate(args.claims, args.out, args.per_transaction, args.first)
    print(f"wrote {args.out}: {args.claims} claims in {sets} transaction set(s), "
          f"{args.out.stat().st_size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
