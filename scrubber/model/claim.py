"""The claim model: what a claim says, each value tied to the segment and element it came from.

Values stay strings as found; typed readings (dates, decimals) are helpers, so a rule can
report exactly what was on the claim.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ..x12.tokenizer import Segment

if TYPE_CHECKING:
    from .build import HLNode


class Field:
    """One value on the claim and where it came from (segment, element, component)."""

    __slots__ = ("_number", "component", "element", "seg_id", "segment", "value")

    def __init__(
        self, value: str, segment: Segment, seg_id: str, element: int, component: int | None = None
    ) -> None:
        self.value = value
        self.segment = segment
        self.seg_id = seg_id
        self.element = element
        self.component = component
        self._number: Decimal | bool | None = False  # the decimal reading, once asked (False: not yet)

    @property
    def ref(self) -> str:
        """The X12 reference designator, e.g. SV104 or SV101-03."""
        base = f"{self.seg_id}{self.element:02d}"
        return f"{base}-{self.component:02d}" if self.component else base

    def decimal(self) -> Decimal | None:
        # Several rules read the same units and charges: parse once (a Decimal is immutable).
        number = self._number
        if number is False:
            number = self._number = _read_decimal(self.value)
        return number  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{self.ref}={self.value!r}@{self.segment.index}"


def _read_decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def is_digits(text: str) -> bool:
    """Only the ASCII digits 0-9: str.isdigit also takes superscripts such as Latin-1's ² and ³,
    which int() then refuses, and which no X12 number may hold."""
    return text.isascii() and text.isdigit()


def parse_date(value: str) -> dt.date | None:
    """A CCYYMMDD date, or None when it is not one."""
    # A file's claims name the same few days again and again: each text is read once (a date is
    # immutable, so the one read can be shared).
    try:
        return _DATES[value]
    except KeyError:
        pass
    day = _read_date(value)
    if len(_DATES) >= _DATES_LIMIT:
        _DATES.clear()
    _DATES[value] = day
    return day


_DATES: dict[str, dt.date | None] = {}
_DATES_LIMIT = 4096  # (cleared when full: a file of endless distinct dates must not fill memory)


def _read_date(value: str) -> dt.date | None:
    if len(value) != 8 or not is_digits(value):
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


@dataclass(slots=True)
class DateRange:
    """A DTP date (D8) or period (RD8) as found, with its dates read."""

    field: Field
    start: dt.date | None
    end: dt.date | None

    @classmethod
    def read(cls, qualifier: str, value: Field) -> DateRange:
        if qualifier == "RD8" and "-" in value.value:
            first, _, last = value.value.partition("-")
            return cls(value, parse_date(first), parse_date(last))
        day = parse_date(value.value)
        return cls(value, day, day)


@dataclass(slots=True)
class Party:
    """A person or organisation named by an NM1 loop."""

    last_name: Field | None = None
    first_name: Field | None = None
    identifier: Field | None = None  # NM109: NPI for providers, member id for subscribers
    id_qualifier: Field | None = None  # NM108: XX when NM109 is an NPI
    birth_date: Field | None = None  # DMG02

    @property
    def npi(self) -> Field | None:
        if self.id_qualifier is not None and self.id_qualifier.value == "XX":
            return self.identifier
        return None


@dataclass(slots=True)
class Diagnosis:
    qualifier: Field
    code: Field
    # 1-based position among the claim's diagnosis codes: what an 837P line pointer names
    # (0 for admitting, reason-for-visit and external-cause codes, which no pointer names).
    position: int
    role: str  # principal, other, admitting, reason, external

    @property
    def is_icd10(self) -> bool:
        return self.qualifier.value.startswith("A")

    @property
    def dotted(self) -> str:
        code = self.code.value
        return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


@dataclass(slots=True)
class ServiceLine:
    number: Field | None  # LX01
    first: int  # position of LX in the transaction's segment list
    end: int = 0  # position after the line's last segment
    revenue_code: Field | None = None  # SV201 (837I)
    qualifier: Field | None = None  # SV101-01 / SV202-01
    code: Field | None = None  # SV101-02 / SV202-02
    modifiers: list[Field] = field(default_factory=list)
    description: Field | None = None  # SV101-07 / SV202-07
    charge: Field | None = None  # SV102 / SV203
    unit_basis: Field | None = None  # SV103 / SV204
    units: Field | None = None  # SV104 / SV205
    pointers: list[Field] = field(default_factory=list)  # SV107 (837P)
    service_date: DateRange | None = None  # DTP*472 at 2400
    prior_auth: list[Field] = field(default_factory=list)  # REF*G1 at 2400
    attachments: list[Field] = field(default_factory=list)  # PWK01 (report type) at 2400
    notes: list[Field] = field(default_factory=list)  # NTE02 at 2400
    ndc_qualifier: Field | None = None  # LIN02
    ndc: Field | None = None  # LIN03
    ndc_quantity: Field | None = None  # CTP04
    ndc_unit: Field | None = None  # CTP05-01
    procedure_segment: Segment | None = None  # the SV1 or SV2
    procedure_seg_id: str | None = None
    rendering_provider: Party | None = None  # NM1*82 at 2420A
    # modifier_codes, once read: a dozen checks ask for them, and the line is complete by then
    _modifier_codes: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def line_number(self) -> int | None:
        if self.number is None:
            return None
        try:
            return int(self.number.value)
        except ValueError:
            return None

    @property
    def procedure(self) -> str:
        return self.code.value if self.code is not None else ""

    @property
    def modifier_codes(self) -> tuple[str, ...]:
        codes = self._modifier_codes
        if codes is None or len(codes) != len(self.modifiers):
            codes = self._modifier_codes = tuple(m.value for m in self.modifiers)
        return codes


@dataclass(slots=True)
class TransactionContext:
    kind: str  # 837P or 837I
    version: str  # GS08 as found
    control_number: str  # ST02
    creation_date: Field | None = None  # BHT04


@dataclass(slots=True)
class Claim:
    transaction: TransactionContext
    first: int  # position of CLM in the transaction's segment list
    end: int = 0
    claim_id: Field | None = None  # CLM01
    total_charge: Field | None = None  # CLM02
    # CLM05: facility code (place of service on the 837P, the first two digits of the type of
    # bill on the 837I), its qualifier (B / A) and the claim frequency code.
    facility_code: Field | None = None  # CLM05-01
    frequency: Field | None = None  # CLM05-03
    billing_provider: Party = field(default_factory=Party)
    subscriber: Party = field(default_factory=Party)
    patient: Party | None = None
    rendering_provider: Party | None = None  # NM1*82 at 2310B (837P)
    attending_provider: Party | None = None  # NM1*71 at 2310A (837I)
    payer_class: Field | None = None  # SBR09 of the subscriber loop
    payer_id: Field | None = None  # NM109 of NM1*PR (2010BB)
    statement_dates: DateRange | None = None  # DTP*434 (837I)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    prior_auth: list[Field] = field(default_factory=list)  # REF*G1 at 2300
    attachments: list[Field] = field(default_factory=list)  # PWK01 (report type) at 2300
    notes: list[Field] = field(default_factory=list)  # NTE02 at 2300
    lines: list[ServiceLine] = field(default_factory=list)
    hl: HLNode | None = None  # the HL loop the claim hangs under (its parents above it)
    segments: list[Segment] = field(default_factory=list)  # its own, from the CLM to its end
    # No CLM starts it: segments where a claim should be, with its CLM missing or damaged
    # (TransactionReader.claim_without_clm). Always rejected; delivered so that it is not lost.
    missing_clm: bool = False
    _patient_key: tuple[str, ...] | None = field(default=None, repr=False, compare=False)  # (patient_key)

    @property
    def id(self) -> str:
        return self.claim_id.value if self.claim_id is not None else ""

    @property
    def label(self) -> str:
        """The claim as a reader is told of it: its CLM01, or what it lacks."""
        return self.id or ("(no CLM)" if self.missing_clm else "(no CLM01)")

    @property
    def clm_segment(self) -> int | None:
        """The file index of the claim's CLM (None for a claim without one: missing_clm)."""
        return None if self.missing_clm or not self.segments else self.segments[0].index

    @property
    def is_institutional(self) -> bool:
        return self.transaction.kind == "837I"

    @property
    def type_of_bill(self) -> str | None:
        """The 837I type of bill without its leading zero (facility code + frequency, e.g. 131)."""
        if not self.is_institutional or self.facility_code is None:
            return None
        frequency = self.frequency.value if self.frequency is not None else ""
        return self.facility_code.value + frequency

    @property
    def place_of_service(self) -> str | None:
        """The 837P place of service (CLM05-01, e.g. 11 office, 22 outpatient hospital)."""
        if self.is_institutional or self.facility_code is None:
            return None
        return self.facility_code.value

    def line_date(self, line: ServiceLine) -> dt.date | None:
        """The line's date of service; on an 837I without line dates, the statement's start."""
        if line.service_date is not None and line.service_date.start is not None:
            return line.service_date.start
        if self.statement_dates is not None:
            return self.statement_dates.start
        return None

    @property
    def patient_key(self) -> tuple[str, ...]:
        """Who the claim is for, across claims: subscriber id, patient name and birth date. (Read
        once the claim is read whole, by the checks across claims and the run's history: kept.)"""
        key = self._patient_key
        if key is None:
            person = self.patient or self.subscriber

            def value(found: Field | None) -> str:
                return found.value.upper() if found is not None else ""

            key = self._patient_key = (value(self.subscriber.identifier), value(person.last_name),
                                       value(person.first_name), value(person.birth_date))
        return key

    @property
    def payer_class_code(self) -> str | None:
        return self.payer_class.value if self.payer_class is not None else None

    @property
    def payer_id_code(self) -> str | None:
        return self.payer_id.value if self.payer_id is not None else None

    @property
    def coded_diagnoses(self) -> list[Diagnosis]:
        return [d for d in self.diagnoses if d.role in ("principal", "other", "admitting", "reason")]
