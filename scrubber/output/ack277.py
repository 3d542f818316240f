"""Write a 277CA Claim Acknowledgment (005010X214) with one status per claim: accepted or rejected.

The structure follows pyx12's map 277.5010.X214.xml: per input transaction set, an ST*277 with
the information source (HL 20: who acknowledges, the 837's receiver), the information receiver
(HL 21: the 837's submitter, TRN02 = the 837's BHT03, the batch's totals), each billing provider
(HL 19) and each patient (HL PT) with one 2200D loop per claim: TRN*2*<CLM01>, one STC, the
claim's service dates (DTP*472), and its bill type (REF*BLT) on an 837I.

An accepted or corrected claim gets STC A1:20; a rejected one A7 with the Health Care Claim
Status Code (code list 508) of its first error that is not fixed. Warnings never appear: a 277CA
can only accept or reject (X12 RFI 2203). Written at `finish()`; until then only a few values of
each claim are kept.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from ..model.build import HLNode
from ..model.claim import Claim, Party, is_digits, parse_date
from ..rules.engine import REJECTED, ClaimResult
from ..rules.findings import Finding
from ..x12.tokenizer import Delimiters
from .ack999 import EnvelopedAck, x12_text
from .sink import ScrubbedClaim, TransactionClosed
from .summary import Summary

VERSION_277CA = "005010X214"

# Health Care Claim Status Codes (X12 external code list 508) used here, with their official
# wording. Each one was confirmed in OpenDental's copy of the list
# (github.com/OpenDental/opendental, OpenDentBusiness/X12/X277.cs, GetStringForExternalSourceCode508).
STATUS_WORDING = {
    "19": "Entity acknowledges receipt of claim/encounter. Usage: This code requires use of an Entity Code.",
    "20": "Accepted for processing.",
    "21": "Missing or invalid information. Usage: At least one other status code is required to identify "
          "the missing or invalid information.",
    "178": "Submitted charges.",
    "187": "Date(s) of service.",
    "218": "NDC number.",
    "252": "Entity's prior authorization/certification number. Usage: This code requires the use of an "
           "Entity Code.",
    "255": "Diagnosis code.",
    "259": "Frequency of service.",
    "400": "Claim is out of balance",
    "453": "Procedure Code Modifier(s) for Service(s) Rendered",
    "454": "Procedure code for services rendered.",
    "455": "Revenue code for services rendered.",
    "476": "Missing or invalid units of service",
    "477": "Diagnosis code pointer is missing or invalid",
    "481": "Claim/submission format is invalid.",
    "488": "Diagnosis code(s) for the services rendered.",
    "508": "ICD9 Usage: At least one other status code is required to identify the related procedure code or "
           "diagnosis code.",
    "510": "Future date. Usage: At least one other status code is required to identify the data element in error.",
    "512": "Length invalid for receiver's application system. Usage: At least one other status code is required "
           "to identify the data element in error.",
    "562": "Entity's National Provider Identifier (NPI). Usage: This code requires use of an Entity Code.",
    "724": "Drug dosage. This change effective 5/01/2017: Drug Quantity",
}

# Claim Status Category Codes (code list 507).
ACKNOWLEDGED = "A1"  # Acknowledgement/Receipt: the claim/encounter has been received
REJECTED_INVALID = "A7"  # Acknowledgement/Rejected for Invalid Information
ACCEPTED_FOR_PROCESSING = "20"
RECEIVED = "19"
MISSING_OR_INVALID = "21"  # the fallback, where no code of list 508 names the reason

# The entity an NPI finding is about: the NM101 of the NM1 it points at (NPI_ENTITY).
NPI_ENTITY = "NM101"
PAYER = "PR"
PROVIDER = "1P"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a claim is rejected, in code list 508: the status code, and a second one where the
    first one's usage asks for another to name the data in error (it goes in STC10)."""

    codes: tuple[str, ...]
    entity: str | None = None  # STC01-03, for the codes that require an entity code


# Each rule's status codes live in the catalog (rules/catalog.toml status_277ca). A rule from a
# catalog without them would be read by its category where the category has one meaning in list
# 508; otherwise "21 Missing or invalid information".
CATEGORY_REASONS = {
    "syntax": Reason(("481",)),
    "balancing": Reason(("400",)),
    "units": Reason(("476",)),
    "modifier": Reason(("453",)),
    "ndc": Reason(("218",)),
    "authorization": Reason(("252",), PAYER),
}
FALLBACK_REASON = Reason((MISSING_OR_INVALID,))

# The entity codes STC01-03 takes in loop 2200D (pyx12's map 277.5010.X214.xml).
_CLAIM_ENTITY_CODES = frozenset(("03", "1P", "1Z", "40", "41", "71", "72", "73", "77", "82", "85", "87", "DK",
                                 "DN", "DQ", "FA", "GB", "HK", "IL", "LI", "MSC", "PR", "PRP", "QB", "QC", "QD",
                                 "SEP", "TL", "TTP", "TU"))

# Who acknowledges: the 277CA speaks for the 837's receiver, and the scrubber checks claims
# before they reach the payer, as a clearinghouse does (NM101 AY, and STC01-03 AY in 2200B/C).
_SOURCE_ENTITY = "AY"

# Where the 837 does not carry a value the 277CA requires (a broken 837, whose claims are then
# rejected for it), the element says so rather than stay empty: an empty required element would
# make the acknowledgment itself invalid.
UNKNOWN = "UNKNOWN"

# Maximum lengths of the values copied from the 837 (X12 data elements 1035, 1036, 1037, 1038,
# 1039, 67, 127).
_NAME_LENGTHS = (60, 35, 25, 10, 10)
_ID_LENGTH = 80
_REF_LENGTH = 50
_MESSAGE_LENGTH = 264  # STC12, data element 933


# -- what is kept of each claim, provider and transaction set -------------------------------

@dataclass(frozen=True, slots=True)
class NameRecord:
    """An NM1 as the 277CA writes it: entity type, names (NM103-NM107), id qualifier and id."""

    entity_type: str
    names: tuple[str, ...]
    id_qualifier: str
    identifier: str

    def elements(self, entity: str, names: int = 5) -> list[str]:
        """The NM1, with at most `names` names (the loops of the 277CA use NM103 alone, NM103-NM105
        or NM103-NM107)."""
        kept = list(self.names[:names])
        return ["NM1", entity, self.entity_type, *kept, *[""] * (5 - len(kept)), self.id_qualifier, self.identifier]


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """One claim's acknowledgment: its id, charge, status and what loop 2200D says of it."""

    claim_id: str
    charge: Decimal
    accepted: bool
    codes: tuple[str, ...]
    entity: str | None
    message: str | None
    service_start: dt.date
    service_end: dt.date
    bill_type: str | None
    clearinghouse_id: str | None
    provider: int  # index of its billing provider in the batch
    patient_key: tuple[int, str]
    patient: NameRecord


@dataclass(slots=True)
class BatchStatus:
    """One input transaction set: who sent and received it, its providers and claims."""

    source: NameRecord
    submitter: NameRecord
    batch_id: str  # the 837's BHT03
    providers: list[NameRecord] = field(default_factory=list)
    claims: list[ClaimStatus] = field(default_factory=list)


# -- reading a transaction set --------------------------------------------------------------

def claim_reason(result: ClaimResult) -> tuple[Finding | None, Reason]:
    """The first error of a rejected claim that is not fixed, and the status code(s) naming it."""
    finding = next((f for f in result.findings if f.is_error and not f.fixed), None)
    if finding is None:
        return None, FALLBACK_REASON
    rule = finding.rule
    if rule.status_277ca:
        return finding, Reason(rule.status_277ca, rule.status_277ca_entity)
    return finding, CATEGORY_REASONS.get(rule.category) or FALLBACK_REASON


class _BatchReader:
    """Reads what the 277CA needs from one scrubbed transaction set, claim by claim."""

    def __init__(self, first: ScrubbedClaim, d: Delimiters, today: dt.date) -> None:
        self.d = d
        self.today = today
        self.header = first.header
        header = self._header_parties()
        self.status = BatchStatus(source=header["40"], submitter=header["41"],
                                  batch_id=self._batch_id(first.transaction.control_number))
        self._providers: dict[int, int] = {}  # billing provider loop (its position) -> index in status
        self._current: HLNode | None = None  # the billing provider loop read last

    def add(self, item: ScrubbedClaim) -> None:
        provider = self._provider_of(item.hl)
        key = provider.position if provider is not None else -1
        if key not in self._providers:
            self._providers[key] = len(self.status.providers)
            self.status.providers.append(self._provider(provider))
        self.status.claims.append(self._claim(item, self._providers[key]))

    # -- the header: submitter (1000A) and receiver (1000B) ---------------------------------

    def _header_parties(self) -> dict[str, NameRecord]:
        found: dict[str, list[str]] = {}
        for seg in self.header:
            elements = seg.elements(self.d)
            if elements[0] == "NM1" and len(elements) > 1 and elements[1] in ("40", "41"):
                found.setdefault(elements[1], elements)
        receiver = found.get("40", [])
        submitter = found.get("41", [])
        return {
            # The information source is an organisation (NM102 2) identified by its ETIN (46).
            "40": NameRecord("2", (self._text(_at(receiver, 3), 60) or UNKNOWN,), "46",
                             self._text(_at(receiver, 9), _ID_LENGTH) or UNKNOWN),
            "41": NameRecord(_entity_type(_at(submitter, 2)), self._names(submitter) or (UNKNOWN,), "46",
                             self._text(_at(submitter, 9), _ID_LENGTH) or UNKNOWN),
        }

    def _batch_id(self, control_number: str) -> str:
        for seg in self.header[:3]:
            elements = seg.elements(self.d)
            if elements[0] == "BHT" and _at(elements, 3):
                return self._text(elements[3], _REF_LENGTH)
        return self._text(control_number, _REF_LENGTH) or UNKNOWN

    # -- billing providers (2010AA) --------------------------------------------------------

    def _provider_of(self, node: HLNode | None) -> HLNode | None:
        """A claim's billing provider: the HL 20 loop it hangs under. Where the HL tree is
        broken (an HL02 naming no open HL), the billing provider loop read last before it."""
        top = node.top if node is not None else None
        if top is not None and top.level == "20":
            self._current = top
            return top
        return self._current

    def _provider(self, node: HLNode | None) -> NameRecord:
        nm1: list[str] = []
        tax_id = ""
        if node is not None:
            for seg in node.segments[1:]:
                elements = seg.elements(self.d)
                if elements[0] == "NM1" and _at(elements, 1) == "85" and not nm1:
                    nm1 = elements
                elif elements[0] == "REF" and _at(elements, 1) == "EI":
                    tax_id = _at(elements, 2)
        npi = _at(nm1, 9) if _at(nm1, 8) == "XX" else ""
        # The NPI identifies the billing provider; an 837 without one gives its tax id (REF*EI).
        qualifier, identifier = ("XX", npi) if npi else ("FI", tax_id)
        return NameRecord(_entity_type(_at(nm1, 2)), self._names(nm1) or (UNKNOWN,), qualifier,
                          self._text(identifier, _ID_LENGTH) or UNKNOWN)

    # -- claims ---------------------------------------------------------------------------

    def _claim(self, item: ScrubbedClaim, provider: int) -> ClaimStatus:
        result = item.result
        claim = result.claim
        accepted = result.disposition != REJECTED
        codes: tuple[str, ...] = (ACCEPTED_FOR_PROCESSING,)
        entity = message = None
        if not accepted:
            finding, reason = claim_reason(result)
            codes, entity = reason.codes, reason.entity
            if entity == NPI_ENTITY:
                entity = self._npi_entity(finding, item)
            if finding is not None:
                message = self._text(f"{finding.rule.id} {finding.message}", _MESSAGE_LENGTH)
        start, end = self._service_period(claim)
        return ClaimStatus(
            claim_id=self._text(claim.id, _REF_LENGTH) or UNKNOWN,
            charge=_charge(claim),
            accepted=accepted,
            codes=codes,
            entity=entity,
            message=message,
            service_start=start,
            service_end=end,
            bill_type=self._bill_type(claim),
            clearinghouse_id=self._clearinghouse_id(claim),
            provider=provider,
            patient_key=(provider, str(claim.hl.position if claim.hl is not None else claim.first)),
            patient=self._patient(claim),
        )

    def _npi_entity(self, finding: Finding | None, item: ScrubbedClaim) -> str:
        """The entity whose NPI is wrong: the NM101 of the NM1 the finding points at."""
        if finding is not None and finding.segment is not None:
            loops = item.hl.chain() if item.hl is not None else []
            for segments in (item.result.claim.segments, *(loop.segments for loop in loops)):
                at = finding.segment - segments[0].index if segments else -1
                if 0 <= at < len(segments):
                    entity = _at(segments[at].elements(self.d), 1)
                    return entity if entity in _CLAIM_ENTITY_CODES else PROVIDER
        return PROVIDER

    def _patient(self, claim: Claim) -> NameRecord:
        """The patient (2010CA) or, when the subscriber is the patient, the subscriber (2010BA),
        identified by the subscriber's member id."""
        person: Party = claim.patient or claim.subscriber
        source = next((f.segment for f in (person.last_name, person.first_name, person.identifier) if f), None)
        names = self._names(source.elements(self.d)) if source is not None else ()
        subscriber = claim.subscriber
        qualifier = subscriber.id_qualifier.value if subscriber.id_qualifier is not None else ""
        identifier = subscriber.identifier.value if subscriber.identifier is not None else ""
        # A patient is a person (NM102 1), identified by a member id (MI) or a unique health id (II).
        return NameRecord("1", names or (UNKNOWN,), qualifier if qualifier in ("II", "MI") else "MI",
                          self._text(identifier, _ID_LENGTH) or UNKNOWN)

    def _service_period(self, claim: Claim) -> tuple[dt.date, dt.date]:
        """The claim's dates of service: its statement period (837I), else its first and last
        line dates. A claim with no readable date (it is rejected for it) gets the date the 837
        was created (BHT04), the latest its services can be, else the day of the acknowledgment."""
        if claim.statement_dates is not None and claim.statement_dates.start is not None:
            start = claim.statement_dates.start
            return start, claim.statement_dates.end or start
        starts, ends = [], []
        for line in claim.lines:
            found = line.service_date
            if found is not None and found.start is not None:
                starts.append(found.start)
                ends.append(found.end or found.start)
        if starts:
            return min(starts), max(ends)
        created = claim.transaction.creation_date
        day = parse_date(created.value) if created is not None else None
        return day or self.today, day or self.today

    def _bill_type(self, claim: Claim) -> str | None:
        """An 837I claim's type of bill: facility type code and frequency code (CLM05-01, -03)."""
        if not claim.is_institutional or claim.claim_id is None:
            return None
        place = _at(claim.claim_id.segment.elements(self.d), 5).split(self.d.component)
        facility, frequency = _at(place, 0), _at(place, 2)
        if is_digits(facility) and is_digits(frequency):
            return facility + frequency
        return None

    def _clearinghouse_id(self, claim: Claim) -> str | None:
        """REF*D9 of the claim (2300): a clearinghouse's claim id, given back in the 277CA."""
        end = claim.lines[0].first if claim.lines else claim.end
        for seg in claim.segments[:end - claim.first]:
            elements = seg.elements(self.d)
            if elements[0] == "REF" and _at(elements, 1) == "D9" and _at(elements, 2):
                return self._text(elements[2], _REF_LENGTH)
        return None

    # -- values ---------------------------------------------------------------------------

    def _names(self, nm1: list[str]) -> tuple[str, ...]:
        """NM103-NM107 as found (organisations have only NM103), trailing empty ones dropped."""
        names = [self._text(_at(nm1, 3 + i), length) for i, length in enumerate(_NAME_LENGTHS)]
        if _at(nm1, 2) == "2":
            names = names[:1]
        while names and not names[-1]:
            names.pop()
        return tuple(names) if names and names[0] else ()

    def _text(self, value: str, length: int) -> str:
        return x12_text(value, self.d, length)


def _at(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


def _entity_type(found: str) -> str:
    return found if found in ("1", "2") else "2"


# An X12 amount (type R) has at most 18 characters: a CLM02 beyond this cannot be echoed.
_LARGEST_AMOUNT = Decimal("999999999999999.99")


def _charge(claim: Claim) -> Decimal:
    """CLM02 as received; 0 when it is missing, not a number, or too large for an X12 amount (1e309,
    say): the claim is rejected for it, and the 277CA must stay valid X12."""
    value = claim.total_charge.decimal() if claim.total_charge is not None else None
    return value if value is not None and abs(value) <= _LARGEST_AMOUNT else Decimal(0)


def _amount(value: Decimal) -> str:
    """An X12 decimal (type R): no exponent, no trailing zeros after the point."""
    text = format(value.quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- writing ----------------------------------------------------------------------------------

class _Totals:
    """Accepted and rejected claims and amounts, for QTY and AMT."""

    def __init__(self, claims: list[ClaimStatus]) -> None:
        self.accepted = [c for c in claims if c.accepted]
        self.rejected = [c for c in claims if not c.accepted]
        self.charge = sum((c.charge for c in claims), Decimal(0))

    def segments(self, accepted_qualifier: str, rejected_qualifier: str) -> list[list[str]]:
        found = []
        if self.accepted:
            found.append(["QTY", accepted_qualifier, str(len(self.accepted))])
        if self.rejected:
            found.append(["QTY", rejected_qualifier, str(len(self.rejected))])
        if self.accepted:
            found.append(["AMT", "YU", _amount(sum((c.charge for c in self.accepted), Decimal(0)))])
        if self.rejected:
            found.append(["AMT", "YY", _amount(sum((c.charge for c in self.rejected), Decimal(0)))])
        return found


@dataclass(frozen=True, slots=True)
class _Level:
    """How loops 2200B and 2200C differ: TRN01, whether STC02 is used, the QTY qualifiers."""

    trace_type: str
    dated: bool
    accepted_quantity: str
    rejected_quantity: str


_RECEIVER_LEVEL = _Level("2", True, "90", "AA")  # 2200B: claims accepted / rejected in the batch
_PROVIDER_LEVEL = _Level("1", False, "QA", "QC")  # 2200C: the provider's claims accepted / rejected


class _TransactionWriter:
    """The segments of one ST*277 (the first holds only ST01: the envelope numbers and closes it)."""

    def __init__(self, batch: BatchStatus, d: Delimiters, created: dt.datetime, trace: str) -> None:
        self.batch = batch
        self.d = d
        self.created = created
        self.received = created.strftime("%Y%m%d")
        self.trace = trace
        self.body: list[list[str]] = [["277"]]
        self.hl = 0

    def write(self) -> list[list[str]]:
        self.body.append(["BHT", "0085", "08", self.trace, self.received, self.created.strftime("%H%M"), "TH"])
        source = self._hl("", "20", "1")
        self.body.append(self.batch.source.elements(_SOURCE_ENTITY, names=1))
        self.body.append(["TRN", "1", self.trace])
        self.body.append(["DTP", "050", "D8", self.received])
        self.body.append(["DTP", "009", "D8", self.received])
        receiver = self._hl(source, "21", "1")
        self.body.append(self.batch.submitter.elements("41", names=3))
        self._status_level(_RECEIVER_LEVEL, self.batch.claims)
        by_provider: dict[int, list[ClaimStatus]] = {}
        for claim in self.batch.claims:
            by_provider.setdefault(claim.provider, []).append(claim)
        for index, provider in enumerate(self.batch.providers):
            self._provider(receiver, provider, by_provider.get(index, []))
        return self.body

    def _hl(self, parent: str, level: str, child: str | None) -> str:
        self.hl += 1
        number = str(self.hl)
        self.body.append(["HL", number, parent, level, *([child] if child is not None else [])])
        return number

    def _status_level(self, level: _Level, claims: list[ClaimStatus]) -> None:
        """TRN, STC and totals of the information receiver (2200B) or a billing provider (2200C):
        received by the source (A1:19:AY) and accepted (WQ) as a whole; the claims' own STCs say
        which of them are rejected.

        TRN02 is the 837's BHT03 at both levels: the guide asks for it in 2200B, and X12 RFI 960
        recommends the originator's BHT03 for the information source's trace in 2200C too."""
        totals = _Totals(claims)
        self.body.append(["TRN", level.trace_type, self.batch.batch_id])
        status = self.d.component.join((ACKNOWLEDGED, RECEIVED, _SOURCE_ENTITY))
        self.body.append(["STC", status, self.received if level.dated else "", "WQ", _amount(totals.charge)])
        self.body.extend(totals.segments(level.accepted_quantity, level.rejected_quantity))

    def _provider(self, parent: str, provider: NameRecord, claims: list[ClaimStatus]) -> None:
        number = self._hl(parent, "19", "1")
        self.body.append(provider.elements("85"))
        self._status_level(_PROVIDER_LEVEL, claims)
        patients: dict[tuple[int, str], list[ClaimStatus]] = {}
        for claim in claims:
            patients.setdefault(claim.patient_key, []).append(claim)
        for patient_claims in patients.values():
            self._hl(number, "PT", None)  # HL04 is not used at the patient level
            self.body.append(patient_claims[0].patient.elements("QC"))
            for claim in patient_claims:
                self._claim(claim)

    def _claim(self, claim: ClaimStatus) -> None:
        d = self.d
        self.body.append(["TRN", "2", claim.claim_id])
        category = ACKNOWLEDGED if claim.accepted else REJECTED_INVALID
        first = [category, claim.codes[0]] + ([claim.entity] if claim.entity else [])
        stc = ["STC", d.component.join(first), self.received, "WQ" if claim.accepted else "U", _amount(claim.charge)]
        second = claim.codes[1:2]
        if second or claim.message:
            stc += [""] * 5  # STC05-STC09 are not used
            stc.append(d.component.join((category, second[0])) if second else "")  # STC10
            stc += ["", claim.message or ""]  # STC11 unused; STC12 the finding, in words
        self.body.append(stc)
        if claim.clearinghouse_id:
            self.body.append(["REF", "D9", claim.clearinghouse_id])
        if claim.bill_type:
            self.body.append(["REF", "BLT", claim.bill_type])
        self.body.append(["DTP", "472", *_period(claim.service_start, claim.service_end)])


def _period(start: dt.date, end: dt.date) -> list[str]:
    if start == end:
        return ["D8", start.strftime("%Y%m%d")]
    return ["RD8", f"{start:%Y%m%d}-{end:%Y%m%d}"]


class Ack277CA(EnvelopedAck):
    """A 277CA Claim Acknowledgment (005010X214) of the whole input, written to `stream` at
    `finish()`: one ST*277 per input transaction set that has claims, and in it exactly one
    claim status (STC in loop 2200D, TRN02 = CLM01) per claim.

    Accepted and corrected claims get A1:20 (received, accepted for processing) with STC03 WQ;
    rejected ones A7 (rejected for invalid information) with STC03 U, the status code of their
    first unfixed error (its rule's status_277ca in the catalog) and that error's message in STC12.
    Warnings are never reported. The envelope answers the input's (sender and receiver swapped, its delimiters).
    """

    def __init__(self, stream: BinaryIO, *, control_number: int | str | None = None,
                 created: dt.datetime | None = None) -> None:
        super().__init__(stream, control_number=control_number, created=created)
        # Each transaction set's ST..SE is written here once the set ends, so memory holds the
        # claims of one set, not of the file; the envelope around them is known only at the end
        # (GS06 depends on how many groups the input has).
        self._spool: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish())
        self._sets = 0
        self._reading: _BatchReader | None = None

    def claim(self, item: ScrubbedClaim) -> None:
        if self._reading is None:
            d = self._envelope.d
            assert d is not None
            self._reading = _BatchReader(item, d, self._envelope.created.date())
        self._reading.add(item)

    def transaction_end(self, event: TransactionClosed) -> None:
        batch, self._reading = (self._reading.status if self._reading is not None else None), None
        envelope = self._envelope
        if batch is None or not envelope.ready:
            return
        d = envelope.d
        assert d is not None
        self._sets += 1
        # BHT03 and the source's trace (2200A TRN02): this acknowledgment's ISA13 and set number.
        trace = f"{envelope.control}{self._sets:04d}"
        body = _TransactionWriter(batch, d, envelope.created, trace).write()
        self._put(self._spool, envelope.transaction(self._sets, body, VERSION_277CA))

    def finish(self, summary: Summary, trailer: str) -> None:
        try:
            if not self._envelope.ready or not self._sets:
                return  # no claim, nothing to acknowledge: a 277CA needs at least one claim
            self._put(self._stream, self._envelope.opening("HN", VERSION_277CA))
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, self._stream, 1 << 20)
            self._put(self._stream, self._envelope.closing(self._sets))
        finally:
            self._spool.close()

    def _put(self, stream: BinaryIO, lines: list[str]) -> None:
        end = self._envelope.end
        # Values echoed from the input (ISA and GS ids) may hold a byte outside ASCII, which an
        # acknowledgment may not: each such character becomes "?", so fixed widths still hold.
        stream.write((end.join(lines) + end).encode("ascii", "replace"))
