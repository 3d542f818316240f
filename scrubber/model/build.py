"""Build the claim model of one transaction set from its segments.

The 837 loops are recognised from segment ids and qualifiers, the way the implementation
guide defines them: a claim runs from CLM to the next CLM, HL or SE; within it, the 2300
claim loop runs until its first sub-loop (NM1, SBR) or service line (LX); a service line
runs from LX to the next LX.
"""

from __future__ import annotations

from ..x12.envelope import TransactionSet
from ..x12.tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id
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
    """One HL loop (billing provider 20, subscriber 22, patient 23): its own segments (from the HL
    to its first claim or child loop) and what its parties say.

    Only the loops above the claim being read are held: a loop is let go once a segment shows its
    subtree has ended (an HL that is not its descendant, or the SE).
    """

    __slots__ = ("depth", "errors", "level", "misplaced", "number", "parent", "parent_number", "party",
                 "position", "segments", "top")

    def __init__(self, position: int, number: str, parent_number: str, level: str, parent: HLNode | None) -> None:
        self.position = position
        self.number = number
        self.parent_number = parent_number
        self.level = level
        # A reference upwards only: nothing points down, so a finished subtree is freed at once
        # by reference counting.
        self.parent = parent
        self.depth: int = parent.depth + 1 if parent is not None else 0
        self.top: HLNode = parent.top if parent is not None else self  # the outermost loop above
        self.segments: list[Segment] = []
        # What the HL chain says: the subscriber loop's SBR09 and payer apply to its claims.
        self.party: dict[str, object] = dict(parent.party) if parent is not None else {}
        self.errors: list[object] = []  # structural problems in its own segments (set by the pipeline)
        self.misplaced = False  # its HL02 names no loop open above it

    @property
    def end(self) -> int:
        """Position after the loop's own segments."""
        return self.position + len(self.segments)

    def chain(self) -> list[HLNode]:
        """This loop and those above it, outermost first."""
        found: list[HLNode] = []
        node: HLNode | None = self
        while node is not None:
            found.append(node)
            node = node.parent
        found.reverse()
        return found

    def __repr__(self) -> str:
        return f"HLNode({self.number!r}, level={self.level!r}, at={self.position})"


class TransactionReader:
    """Reads the claims of one transaction set as its segments stream by, one at a time.

    `feed` each segment after the ST (positions count from the ST, which is 0); it returns the
    claim that segment closed, if any; `finish` at the SE. Memory holds the transaction header,
    the HL loops above the current claim and the current claim: never the whole set.
    """

    def __init__(self, transaction: TransactionSet, d: Delimiters) -> None:
        self.transaction = transaction
        self.d = d
        version = transaction.group.version
        self.context = TransactionContext(
            kind=version.kind, version=version.found, control_number=transaction.control_number
        )
        self.header: list[Segment] = [transaction.header]  # ST up to the first HL (or claim)
        self.position = 1
        self.stack: list[HLNode] = []  # the open HL loops, outermost first
        self.hl: HLNode | None = None
        self.claim: Claim | None = None
        self.line: ServiceLine | None = None
        self.claims_read = 0
        self.loop = "header"  # header, hl, 2300, 2300-sub, 2400, 2410, 2400-sub
        self.entity = ""  # NM101 of the current NM1 loop

    def feed(self, seg: Segment) -> Claim | None:
        # (Runs once a segment of every set: the common case makes no call it can avoid.)
        position = self.position
        self.position = position + 1
        # Not kept on the segment: the Fields keep what is needed (as Segment.split).
        elements = seg._elements
        if elements is None:
            elements = seg.text.split(self.d.element)
        seg_id = elements[0]
        # (isalnum first: an id of letters and digits, nearly every one, starts with neither.)
        if not seg_id.isalnum() and seg_id[:1] in NOT_AN_ID:
            # Leading spaces or control bytes are the guide's error (the validator reports it), not
            # another segment: an indented CLM still starts a claim, so it is counted and delivered.
            seg_id = segment_id(seg_id)
            elements = [seg_id, *elements[1:]]
        if seg_id == "HL":
            done = self.close_claim(position)
            self.start_hl(position, seg, elements)
            return done
        if seg_id == "CLM":
            # A CLM before any HL is still a claim: the guide's errors reject it, but it is counted
            # and delivered (in the rejected file), never lost among the header's segments.
            done = self.close_claim(position)
            self.start_claim(position, seg, elements)
            return done
        claim = self.claim
        if claim is not None:
            claim.segments.append(seg)
            if seg_id in _CLAIM_READS:
                self.claim_segment(position, seg, elements, seg_id)
        elif self.hl is not None:
            self.hl.segments.append(seg)
            if seg_id in _HL_READS:
                self.hl_segment(seg, elements, seg_id)
        else:
            self.header.append(seg)
            if seg_id == "BHT":
                self.context.creation_date = self.field(seg, elements, seg_id, 4)
        return None

    def finish(self, position: int) -> Claim | None:
        """The SE at `position`: close what is open; returns the last claim, if one was open."""
        done = self.close_claim(position)
        self.stack = []
        self.hl = None
        return done

    @property
    def owner(self) -> Claim | HLNode | None:
        """Who the segment fed last belongs to: a claim, an HL loop, or the header (None)."""
        return self.claim or self.hl

    def field(self, seg: Segment, elements: list[str], seg_id: str, pos: int, comp: int | None = None) -> Field | None:
        if pos >= len(elements):
            return None
        value = elements[pos]
        if not value:
            return None
        if comp is not None:
            return _component(seg, seg_id, pos, value.split(self.d.component), comp)
        return Field(value, seg, seg_id, pos)

    # -- HL loops -------------------------------------------------------------------------

    def start_hl(self, position: int, seg: Segment, elements: list[str]) -> None:
        number = elements[1] if len(elements) > 1 else ""
        parent_number = elements[2] if len(elements) > 2 else ""
        # In X12 a child loop follows its parent, so its parent is one of the open loops: close
        # the loops below it. An HL02 naming no open loop makes a top-level loop.
        stack = self.stack
        level = elements[3] if len(elements) > 3 else ""
        misplaced = False
        parent: HLNode | None = None
        if parent_number:
            for node in reversed(stack):
                if node.number == parent_number:
                    parent = node
                    break
        if parent is not None:
            while stack[-1] is not parent:
                stack.pop()
        elif stack and level != "20" and (parent_number or level in ("22", "23")):
            # HL02 names no loop open above it: the hierarchy is broken. A child follows its
            # parent, so the loop read last stands above it; the node says so (its claims are
            # rejected) and a writer keeps the loops above it, as they came.
            parent = stack[-1]
            misplaced = True
        else:
            stack.clear()
            parent = None
        node = HLNode(position, number, parent_number, level, parent)
        node.misplaced = misplaced
        node.segments.append(seg)
        stack.append(node)
        self.hl = node
        self.loop = "hl"
        self.entity = ""

    def hl_segment(self, seg: Segment, elements: list[str], seg_id: str) -> None:
        assert self.hl is not None
        party = self.hl.party
        if seg_id == "SBR":
            party["payer_class"] = self.field(seg, elements, seg_id, 9)
        elif seg_id == "NM1":
            entity = self.entity = elements[1] if len(elements) > 1 else ""
            if entity == "85":
                party["billing_provider"] = self.party(seg, elements)
            elif entity == "IL":
                party["subscriber"] = self.party(seg, elements)
            elif entity == "QC":
                party["patient"] = self.party(seg, elements)
            elif entity == "PR":
                # Of the payer's NM1 only its id is read: not a whole Party (four Fields) a claim.
                party["payer_id"] = self.field(seg, elements, "NM1", 9)
        elif seg_id == "DMG":
            holder = _DEMOGRAPHICS_OF.get(self.entity)
            if holder and holder in party:
                party[holder].birth_date = self.field(seg, elements, seg_id, 2)  # type: ignore[attr-defined]

    def party(self, seg: Segment, elements: list[str]) -> Party:
        # (NM103, NM104, NM108, NM109: read at once, a Field for each one that is not empty)
        n = len(elements)
        last = elements[3] if n > 3 else ""
        first = elements[4] if n > 4 else ""
        qualifier = elements[8] if n > 8 else ""
        identifier = elements[9] if n > 9 else ""
        # (Positional, in Party's order: a dataclass made with keywords costs twice as much.)
        return Party(
            Field(last, seg, "NM1", 3) if last else None,  # last_name
            Field(first, seg, "NM1", 4) if first else None,  # first_name
            Field(identifier, seg, "NM1", 9) if identifier else None,  # identifier
            Field(qualifier, seg, "NM1", 8) if qualifier else None,  # id_qualifier
        )

    # -- claims ---------------------------------------------------------------------------

    def start_claim(self, position: int, seg: Segment, elements: list[str]) -> None:
        claim = Claim(self.context, position)
        claim.segments.append(seg)
        self.claim_header(claim, seg, elements)
        node = self.hl
        if node is not None:
            party = node.party
            claim.payer_class = party.get("payer_class")  # type: ignore[assignment]
            claim.payer_id = party.get("payer_id")  # type: ignore[assignment]
            claim.billing_provider = party.get("billing_provider") or Party()  # type: ignore[assignment]
            claim.subscriber = party.get("subscriber") or Party()  # type: ignore[assignment]
            claim.patient = party.get("patient")  # type: ignore[assignment]
            claim.hl = node
        self.claims_read += 1
        self.claim = claim
        self.line = None
        self.loop = "2300"

    def claim_header(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        claim.claim_id = self.field(seg, elements, "CLM", 1)
        claim.total_charge = self.field(seg, elements, "CLM", 2)
        parts = elements[5].split(self.d.component) if len(elements) > 5 else []
        claim.facility_code = _component(seg, "CLM", 5, parts, 1)
        claim.frequency = _component(seg, "CLM", 5, parts, 3)

    def close_claim(self, position: int) -> Claim | None:
        if self.line is not None:
            self.line.end = position
            self.line = None
        claim = self.claim
        if claim is not None:
            claim.end = position
            self.claim = None
        return claim

    def claim_segment(self, position: int, seg: Segment, elements: list[str], seg_id: str) -> None:
        """Read one segment of the open claim (any segment: those not in _CLAIM_READS do nothing)."""
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
        # (The segment id is asked before the loop: it is the cheaper test, and most often false.)
        loop = self.loop
        if seg_id == "NM1" and loop in ("2400", "2410", "2400-sub"):
            self.loop = "2400-sub"
            if _element(elements, 1) == "82":
                line.rendering_provider = self.party(seg, elements)
        elif (seg_id == "SVD" or seg_id == "LQ") and loop in ("2400", "2410"):
            self.loop = "2400-sub"
        elif loop == "2400":
            self.line_segment(line, seg, elements, seg_id)
        elif loop == "2410" and seg_id == "CTP":
            line.ndc_quantity = self.field(seg, elements, seg_id, 4)
            line.ndc_unit = self.field(seg, elements, seg_id, 5, 1)
        if seg_id == "LIN" and self.loop in ("2400", "2410"):
            self.loop = "2410"
            line.ndc_qualifier = self.field(seg, elements, seg_id, 2)
            line.ndc = self.field(seg, elements, seg_id, 3)

    def line_segment(self, line: ServiceLine, seg: Segment, elements: list[str], seg_id: str) -> None:
        if seg_id == "SV1":
            # (Fields made here rather than through `field`: one SV1 a service line)
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            self.procedure(line, seg, elements, seg_id, 1)
            n = len(elements)
            value = elements[2] if n > 2 else ""
            line.charge = Field(value, seg, seg_id, 2) if value else None
            value = elements[3] if n > 3 else ""
            line.unit_basis = Field(value, seg, seg_id, 3) if value else None
            value = elements[4] if n > 4 else ""
            line.units = Field(value, seg, seg_id, 4) if value else None
            if n > 7 and elements[7]:
                pointers = line.pointers
                for comp, pointer in enumerate(elements[7].split(self.d.component), start=1):
                    if pointer:
                        pointers.append(Field(pointer, seg, seg_id, 7, comp))
        elif seg_id == "DTP":
            if _element(elements, 1) == "472":
                value = self.field(seg, elements, seg_id, 3)
                if value is not None:
                    line.service_date = DateRange.read(_element(elements, 2), value)
        elif seg_id == "SV2":
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            line.revenue_code = self.field(seg, elements, seg_id, 1)
            self.procedure(line, seg, elements, seg_id, 2)
            line.charge = self.field(seg, elements, seg_id, 3)
            line.unit_basis = self.field(seg, elements, seg_id, 4)
            line.units = self.field(seg, elements, seg_id, 5)
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
        # The composite is split once for its seven components.
        parts = elements[pos].split(self.d.component) if pos < len(elements) else []
        n = len(parts)
        value = parts[0] if n else ""
        line.qualifier = Field(value, seg, seg_id, pos, 1) if value else None
        value = parts[1] if n > 1 else ""
        line.code = Field(value, seg, seg_id, pos, 2) if value else None
        if n > 2:
            modifiers = line.modifiers
            for comp in range(3, min(n, 6) + 1):
                value = parts[comp - 1]
                if value:
                    modifiers.append(Field(value, seg, seg_id, pos, comp))
        value = parts[6] if n > 6 else ""
        line.description = Field(value, seg, seg_id, pos, 7) if value else None

    def diagnoses(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        component = self.d.component
        found = claim.diagnoses
        # the position the next principal or other code takes: those before it, on any HI
        pointed = sum(1 for d in found if d.position) if found else 0
        for pos in range(1, len(elements)):
            parts = elements[pos].split(component)
            if len(parts) < 2:
                continue
            qualifier, code = parts[0], parts[1]
            if not qualifier or not code:
                continue
            role = _DIAGNOSIS_ROLES.get(qualifier)
            if role is None:
                continue  # procedures, occurrences, values, conditions: not diagnoses
            position = 0
            if role == "principal" or role == "other":
                pointed += 1
                position = pointed
            found.append(Diagnosis(Field(qualifier, seg, "HI", pos, 1), Field(code, seg, "HI", pos, 2), position, role))


# The segment ids claim_segment reads or that move it to another loop: no other segment of a
# claim (N3, N4, PRV, AMT, ...) says anything the model keeps, so feed does not hand them on.
_CLAIM_READS = frozenset(("LX", "NM1", "SBR", "HI", "REF", "PWK", "NTE", "DTP", "SV1", "SV2", "SVD", "LQ",
                          "CTP", "LIN"))
# Those hl_segment reads.
_HL_READS = frozenset(("SBR", "NM1", "DMG"))
# Whose birth date a DMG gives, by the NM101 of the loop it is in.
_DEMOGRAPHICS_OF = {"IL": "subscriber", "QC": "patient"}


def _component(seg: Segment, seg_id: str, pos: int, parts: list[str], comp: int) -> Field | None:
    """Component `comp` (1-based) of a composite already split into `parts`, or None when empty."""
    if comp > len(parts):
        return None
    value = parts[comp - 1]
    return Field(value, seg, seg_id, pos, comp) if value else None


def _element(elements: list[str], position: int) -> str:
    return elements[position] if position < len(elements) else ""


def reread_claim(claim: Claim, segments: list[Segment], delimiters: Delimiters) -> Claim:
    """Read a claim again from (edited) segments, keeping what its HL loops said.

    `segments` are the claim's own, from its CLM up to its end.
    """
    builder = TransactionReader.__new__(TransactionReader)
    builder.d = delimiters
    builder.context = claim.transaction
    builder.loop = "2300"
    builder.line = None
    fresh = Claim(claim.transaction, claim.first)
    for name in ("billing_provider", "subscriber", "patient", "payer_class", "payer_id", "hl"):
        setattr(fresh, name, getattr(claim, name))
    fresh.segments = list(segments)
    builder.claim_header(fresh, segments[0], segments[0].elements(delimiters))
    builder.claim = fresh
    for offset, seg in enumerate(segments[1:], start=1):
        elements = seg.split(delimiters)
        builder.claim_segment(claim.first + offset, seg, elements, elements[0])
    builder.close_claim(claim.end)
    return fresh


class ClaimSegments:
    """A claim's own segments, indexed by their position in the transaction set (what findings'
    fixes name): the rules and fixes see the claim, never the rest of the set."""

    __slots__ = ("_first", "_segments")

    def __init__(self, claim: Claim) -> None:
        self._first = claim.first
        self._segments = claim.segments

    def __getitem__(self, position: int) -> Segment:
        at = position - self._first
        if not 0 <= at < len(self._segments):
            raise IndexError(f"segment position {position} is outside the claim")
        return self._segments[at]

    def __len__(self) -> int:
        return self._first + len(self._segments)
