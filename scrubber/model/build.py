"""Build the claim model of one transaction set from its segments.

The 837 loops are recognised from segment ids and qualifiers, the way the implementation
guide defines them: a claim runs from CLM to the next CLM, HL or SE; within it, the 2300
claim loop runs until its first sub-loop (NM1, SBR) or service line (LX); a service line
runs from LX to the next LX.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from ..x12.envelope import TransactionSet
from ..x12.tokenizer import Delimiters, Segment
from .claim import Claim, DateRange, Diagnosis, Field, Party, ServiceLine, TransactionContext

# HI qualifiers (ICD-10-CM first, then their ICD-9-CM counterparts) and the role they give.
_DIAGNOSIS_ROLES = {
    "ABK": "principal", "BK": "principal",
    "ABF": "other", "BF": "other",
    "ABJ": "admitting", "BJ": "admitting",
    "APR": "reason", "PR": "reason",
    "ABN": "external", "BN": "external",
}


class HLNode:
    """One HL loop (billing provider 20, subscriber 22, patient 23) and what hangs under it."""

    __slots__ = (
        "__weakref__",
        "_parent",
        "children",
        "claims",
        "end",
        "level",
        "number",
        "parent_number",
        "position",
    )

    def __init__(self, position: int, number: str, parent_number: str, level: str) -> None:
        self.position = position
        self.number = number
        self.parent_number = parent_number
        self.level = level
        self.end = 0  # end of the HL's own segments (where its first claim or child HL starts)
        # The parent is held weakly: without a cycle, a finished transaction set is freed at
        # once by reference counting instead of waiting for the garbage collector.
        self._parent: weakref.ref[HLNode] | None = None
        self.children: list[HLNode] = []
        self.claims: list[Claim] = []

    @property
    def parent(self) -> HLNode | None:
        return self._parent() if self._parent is not None else None

    @parent.setter
    def parent(self, node: HLNode | None) -> None:
        self._parent = weakref.ref(node) if node is not None else None

    def all_claims(self) -> list[Claim]:
        found = list(self.claims)
        for child in self.children:
            found.extend(child.all_claims())
        return found


@dataclass(eq=False)
class TransactionLayout:
    """A transaction set's segments, its HL tree and its claims, with who owns each segment."""

    transaction: TransactionSet
    delimiters: Delimiters
    context: TransactionContext
    hls: list[HLNode]
    claims: list[Claim]
    _owner: list[object]

    def owner_at(self, position: int) -> Claim | HLNode | None:
        """The claim or HL loop a segment belongs to (None: the transaction header or trailer)."""
        return self._owner[position]  # type: ignore[return-value]

    def scope(self, position: int) -> list[Claim]:
        """The claims a problem in the segment at `position` stands in the way of."""
        owner = self._owner[position] if 0 <= position < len(self._owner) else None
        if isinstance(owner, Claim):
            return [owner]
        if isinstance(owner, HLNode):
            return owner.all_claims()
        return list(self.claims)

    def loop_of(self, position: int) -> str:
        """A short name for the loop that owns a segment, for messages."""
        owner = self._owner[position] if 0 <= position < len(self._owner) else None
        if isinstance(owner, Claim):
            return "claim"
        if isinstance(owner, HLNode):
            return {"20": "billing provider", "22": "subscriber", "23": "patient"}.get(
                owner.level, "HL"
            ) + f" loop (HL {owner.number})"
        return "transaction header"


class _Builder:
    def __init__(self, transaction: TransactionSet, d: Delimiters) -> None:
        self.t = transaction
        self.d = d
        version = transaction.group.version
        self.context = TransactionContext(
            kind=version.kind, version=version.found, control_number=transaction.control_number
        )
        self.hls: list[HLNode] = []
        self.hl_by_number: dict[str, HLNode] = {}
        self.claims: list[Claim] = []
        self.owner: list[object] = []
        self.hl: HLNode | None = None
        self.claim: Claim | None = None
        self.line: ServiceLine | None = None
        self.loop = "header"  # header, hl, 2300, 2300-sub, 2400, 2410, 2400-sub
        self.entity = ""  # NM101 of the current NM1 loop
        # What the HL chain says: the subscriber loop's SBR09 and payer apply to its claims.
        self.hl_party: dict[int, dict[str, object]] = {}

    def field(self, seg: Segment, elements: list[str], seg_id: str, pos: int, comp: int | None = None) -> Field | None:
        if pos >= len(elements):
            return None
        value = elements[pos]
        if comp is not None:
            parts = value.split(self.d.component)
            if comp > len(parts):
                return None
            value = parts[comp - 1]
        if value == "":
            return None
        return Field(value, seg, seg_id, pos, comp)

    def build(self) -> TransactionLayout:
        for position, seg in enumerate(self.t.segments):
            elements = seg.elements(self.d)
            seg_id = elements[0]
            if seg_id == "HL":
                self.start_hl(position, seg, elements)
            elif seg_id == "CLM" and self.loop != "header":
                self.start_claim(position, seg, elements)
            elif seg_id == "SE":
                self.close_claim(position)
                self.close_hl(position)
                self.loop = "trailer"
            elif self.claim is not None:
                self.claim_segment(position, seg, elements, seg_id)
            elif self.hl is not None:
                self.hl_segment(seg, elements, seg_id)
            elif seg_id == "BHT":
                self.context.creation_date = self.field(seg, elements, seg_id, 4)
            self.owner.append(self.claim or self.hl)
        end = len(self.t.segments)
        self.close_claim(end)
        self.close_hl(end)
        return TransactionLayout(self.t, self.d, self.context, self.hls, self.claims, self.owner)

    # -- HL loops -------------------------------------------------------------------------

    def start_hl(self, position: int, seg: Segment, elements: list[str]) -> None:
        self.close_claim(position)
        self.close_hl(position)
        number = elements[1] if len(elements) > 1 else ""
        parent_number = elements[2] if len(elements) > 2 else ""
        level = elements[3] if len(elements) > 3 else ""
        node = HLNode(position, number, parent_number, level)
        node.parent = self.hl_by_number.get(parent_number) if parent_number else None
        if node.parent is not None:
            node.parent.children.append(node)
        self.hls.append(node)
        self.hl_by_number.setdefault(number, node)
        inherited = dict(self.hl_party.get(id(node.parent), {})) if node.parent else {}
        self.hl_party[id(node)] = inherited
        self.hl = node
        self.loop = "hl"
        self.entity = ""

    def close_hl(self, position: int) -> None:
        if self.hl is not None and self.hl.end == 0:
            self.hl.end = position

    def hl_segment(self, seg: Segment, elements: list[str], seg_id: str) -> None:
        party = self.hl_party[id(self.hl)]
        if seg_id == "SBR":
            party["payer_class"] = self.field(seg, elements, seg_id, 9)
        elif seg_id == "NM1":
            self.entity = elements[1] if len(elements) > 1 else ""
            person = self.party(seg, elements)
            if self.entity == "85":
                party["billing_provider"] = person
            elif self.entity == "IL":
                party["subscriber"] = person
            elif self.entity == "QC":
                party["patient"] = person
            elif self.entity == "PR":
                party["payer_id"] = person.identifier
        elif seg_id == "DMG":
            holder = {"IL": "subscriber", "QC": "patient"}.get(self.entity)
            if holder and holder in party:
                party[holder].birth_date = self.field(seg, elements, seg_id, 2)  # type: ignore[attr-defined]

    def party(self, seg: Segment, elements: list[str]) -> Party:
        return Party(
            last_name=self.field(seg, elements, "NM1", 3),
            first_name=self.field(seg, elements, "NM1", 4),
            id_qualifier=self.field(seg, elements, "NM1", 8),
            identifier=self.field(seg, elements, "NM1", 9),
        )

    # -- claims ---------------------------------------------------------------------------

    def start_claim(self, position: int, seg: Segment, elements: list[str]) -> None:
        self.close_claim(position)
        self.close_hl(position)
        claim = Claim(self.context, position)
        self.claim_header(claim, seg, elements)
        node = self.hl
        if node is not None:
            party = self.hl_party[id(node)]
            claim.payer_class = party.get("payer_class")  # type: ignore[assignment]
            claim.payer_id = party.get("payer_id")  # type: ignore[assignment]
            claim.billing_provider = party.get("billing_provider") or Party()  # type: ignore[assignment]
            claim.subscriber = party.get("subscriber") or Party()  # type: ignore[assignment]
            claim.patient = party.get("patient")  # type: ignore[assignment]
            path = []
            while node is not None:
                path.append(node.position)
                node = node.parent
            claim.hl_path = tuple(reversed(path))
            self.hl.claims.append(claim)
        self.claims.append(claim)
        self.claim = claim
        self.line = None
        self.loop = "2300"

    def claim_header(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        claim.claim_id = self.field(seg, elements, "CLM", 1)
        claim.total_charge = self.field(seg, elements, "CLM", 2)
        claim.facility_code = self.field(seg, elements, "CLM", 5, 1)
        claim.frequency = self.field(seg, elements, "CLM", 5, 3)

    def close_claim(self, position: int) -> None:
        if self.line is not None:
            self.line.end = position
            self.line = None
        if self.claim is not None:
            self.claim.end = position
            self.claim = None

    def claim_segment(self, position: int, seg: Segment, elements: list[str], seg_id: str) -> None:
        claim = self.claim
        assert claim is not None
        if seg_id == "LX":
            if self.line is not None:
                self.line.end = position
            self.line = ServiceLine(self.field(seg, elements, seg_id, 1), position)
            claim.lines.append(self.line)
            self.loop = "2400"
            return
        if seg_id == "NM1" and self.loop in ("2300", "2300-sub"):
            self.loop = "2300-sub"
            entity = _element(elements, 1)
            if entity == "82":
                claim.rendering_provider = self.party(seg, elements)
            elif entity == "71":
                claim.attending_provider = self.party(seg, elements)
            return
        if self.loop == "2300":
            if seg_id == "SBR":
                self.loop = "2300-sub"
            elif seg_id == "HI":
                self.diagnoses(claim, seg, elements)
            elif seg_id == "REF" and _element(elements, 1) == "G1":
                found = self.field(seg, elements, seg_id, 2)
                if found is not None:
                    claim.prior_auth.append(found)
            elif seg_id in ("PWK", "NTE"):
                self.documentation(claim, seg, elements, seg_id)
            elif seg_id == "DTP" and _element(elements, 1) == "434":
                value = self.field(seg, elements, seg_id, 3)
                if value is not None:
                    claim.statement_dates = DateRange.read(_element(elements, 2), value)
            return
        line = self.line
        if line is None:
            return
        if self.loop in ("2400", "2410", "2400-sub") and seg_id == "NM1":
            self.loop = "2400-sub"
            if _element(elements, 1) == "82":
                line.rendering_provider = self.party(seg, elements)
        elif self.loop in ("2400", "2410") and seg_id in ("SVD", "LQ"):
            self.loop = "2400-sub"
        elif self.loop == "2400":
            self.line_segment(line, seg, elements, seg_id)
        elif self.loop == "2410" and seg_id == "CTP":
            line.ndc_quantity = self.field(seg, elements, seg_id, 4)
            line.ndc_unit = self.field(seg, elements, seg_id, 5, 1)
        if seg_id == "LIN" and self.loop in ("2400", "2410"):
            self.loop = "2410"
            line.ndc_qualifier = self.field(seg, elements, seg_id, 2)
            line.ndc = self.field(seg, elements, seg_id, 3)

    def line_segment(self, line: ServiceLine, seg: Segment, elements: list[str], seg_id: str) -> None:
        if seg_id == "SV1":
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            self.procedure(line, seg, elements, seg_id, 1)
            line.charge = self.field(seg, elements, seg_id, 2)
            line.unit_basis = self.field(seg, elements, seg_id, 3)
            line.units = self.field(seg, elements, seg_id, 4)
            if len(elements) > 7 and elements[7]:
                for comp in range(1, len(elements[7].split(self.d.component)) + 1):
                    pointer = self.field(seg, elements, seg_id, 7, comp)
                    if pointer is not None:
                        line.pointers.append(pointer)
        elif seg_id == "SV2":
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            line.revenue_code = self.field(seg, elements, seg_id, 1)
            self.procedure(line, seg, elements, seg_id, 2)
            line.charge = self.field(seg, elements, seg_id, 3)
            line.unit_basis = self.field(seg, elements, seg_id, 4)
            line.units = self.field(seg, elements, seg_id, 5)
        elif seg_id == "DTP" and _element(elements, 1) == "472":
            value = self.field(seg, elements, seg_id, 3)
            if value is not None:
                line.service_date = DateRange.read(_element(elements, 2), value)
        elif seg_id == "REF" and _element(elements, 1) == "G1":
            found = self.field(seg, elements, seg_id, 2)
            if found is not None:
                line.prior_auth.append(found)
        elif seg_id in ("PWK", "NTE"):
            self.documentation(line, seg, elements, seg_id)

    def documentation(self, holder: Claim | ServiceLine, seg: Segment, elements: list[str], seg_id: str) -> None:
        """PWK (attachment: its report type, PWK01) and NTE (note text, NTE02) at 2300 or 2400."""
        found = self.field(seg, elements, seg_id, 1 if seg_id == "PWK" else 2)
        if found is not None:
            (holder.attachments if seg_id == "PWK" else holder.notes).append(found)

    def procedure(self, line: ServiceLine, seg: Segment, elements: list[str], seg_id: str, pos: int) -> None:
        line.qualifier = self.field(seg, elements, seg_id, pos, 1)
        line.code = self.field(seg, elements, seg_id, pos, 2)
        for comp in range(3, 7):
            modifier = self.field(seg, elements, seg_id, pos, comp)
            if modifier is not None:
                line.modifiers.append(modifier)
        line.description = self.field(seg, elements, seg_id, pos, 7)

    def diagnoses(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        for pos in range(1, len(elements)):
            qualifier = self.field(seg, elements, "HI", pos, 1)
            code = self.field(seg, elements, "HI", pos, 2)
            if qualifier is None or code is None:
                continue
            role = _DIAGNOSIS_ROLES.get(qualifier.value)
            if role is None:
                continue  # procedures, occurrences, values, conditions: not diagnoses
            position = 0
            if role in ("principal", "other"):
                position = sum(1 for d in claim.diagnoses if d.position) + 1
            claim.diagnoses.append(Diagnosis(qualifier, code, position, role))


def _element(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


def build_transaction(transaction: TransactionSet, delimiters: Delimiters) -> TransactionLayout:
    """Read the claims of one transaction set."""
    return _Builder(transaction, delimiters).build()


def reread_claim(claim: Claim, segments: list[Segment], delimiters: Delimiters) -> Claim:
    """Read a claim again from (edited) segments, keeping what its HL loops said.

    `segments` are the claim's own, from its CLM up to its end.
    """
    builder = _Builder.__new__(_Builder)
    builder.d = delimiters
    builder.context = claim.transaction
    builder.loop = "2300"
    builder.line = None
    fresh = Claim(claim.transaction, claim.first)
    for name in ("billing_provider", "subscriber", "patient", "payer_class", "payer_id", "hl_path"):
        setattr(fresh, name, getattr(claim, name))
    builder.claim_header(fresh, segments[0], segments[0].elements(delimiters))
    builder.claim = fresh
    for offset, seg in enumerate(segments[1:], start=1):
        elements = seg.elements(delimiters)
        builder.claim_segment(claim.first + offset, seg, elements, elements[0])
    builder.close_claim(claim.end)
    return fresh
