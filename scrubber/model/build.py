"""Build the claim model of one transaction set from its segments.

A claim runs from CLM to the next CLM, HL or SE; a service line from LX to the next LX. Within
a claim, each segment goes to the loop the implementation guide puts it in (model/loops.py reads
the claim loop, 2300, and the loops below it from the compiled guide): the claim's own segments
are read in 2300, its providers in the 2310 loops, a line's in 2400, 2410 and 2420; what stands in
another payer's loops (2320, 2330) or out of order is not the claim's. The HL loops above the
claims are read the same way (loops.hl_loops): the HL's level (HL03) names its loop in the guide
(2000A, 2000B, 2000C), and its 2010 loops say whose NM1 and DMG a segment is.
"""

from __future__ import annotations

from collections.abc import Callable

from ..x12.envelope import TransactionSet
from ..x12.tokenizer import NOT_AN_ID, Delimiters, Segment, segment_id
from .claim import Claim, DateRange, Diagnosis, Field, Party, ServiceLine, TransactionContext
from .elements import BHT, CLM, CTP, DMG, DTP, HI, HL, LIN, LX, NM1, NTE, PROCEDURE, PWK, REF, SBR, SV1, SV2
from .loops import (
    BIRTH_DATE,
    CLAIM_PROVIDER,
    CLAIM_SEGMENT,
    DRUG_IDENTIFICATION,
    DRUG_SEGMENT,
    LINE_PROVIDER,
    LINE_SEGMENT,
    NOTHING,
    NOWHERE,
    PARTY,
    PAYER_CLASS,
    ClaimLoops,
    claim_loops,
    hl_loops,
)

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

    __slots__ = ("claimed", "depth", "errors", "has_child", "level", "misplaced", "number", "parent", "parent_number",
                 "party", "position", "segments", "stray", "top")

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
        # Where, in `segments`, the first segment stands that the guide does not place in the loop
        # (a CLX, an HI: a claim's, with its CLM missing or damaged), while no claim is read in it.
        self.stray: int | None = None
        self.claimed = False  # a claim was read in it, or in a loop below it
        self.has_child = False  # an HL loop was opened below it

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
        # Claims with no CLM that ended with the one feed returned, at the same segment, in input
        # order: the caller takes them (a rare case: several HL loops with strays end at one HL).
        self.more: list[Claim] = []
        # Told of each HL loop that ends with no claim in it and no loop below it, and no segment
        # that could be a claim's (`stray`): its segments and errors are in no claim (the pipeline
        # names it in the report: output/loops_without_claims.py).
        self.empty_loop: Callable[[HLNode], None] | None = None
        self.loops: ClaimLoops | None = None  # the guide's claim loops, once a claim is read
        self.node = NOWHERE  # the claim's loop the last segment went to (model/loops.py)
        self.hl_loops: ClaimLoops | None = None  # the guide's tables of the open HL loop's level
        self.hl_at = NOWHERE  # the loop of the open HL loop the last segment went to

    @classmethod
    def for_claim(cls, context: TransactionContext, d: Delimiters) -> TransactionReader:
        """A reader for one claim's own segments (read with read_own): a claim
        read again after its fixes, or from its text in a worker."""
        builder = cls.__new__(cls)
        builder.d = d
        builder.context = context
        builder.line = None
        builder.loops = claim_loops(context.kind)
        builder.node = builder.loops.claim
        return builder

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
            ended = self.start_hl(position, seg, elements)
            if done is None and ended:
                done = self.close_loops(ended, position)
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
        elif (hl := self.hl) is not None:
            hl.segments.append(seg)
            if seg_id in _HL_READS:
                if not self.hl_segment(seg, elements, seg_id) and hl.stray is None:
                    hl.stray = len(hl.segments) - 1
            elif hl.stray is None:
                loops = self.hl_loops
                if loops is None:  # an HL level the guide does not have: it places nothing after it
                    hl.stray = len(hl.segments) - 1
                else:
                    found = loops.plain[self.hl_at].get(seg_id)  # (step's memo, without the call)
                    if found is None:
                        found = loops.step(self.hl_at, seg_id, elements, self.d.component)
                    if found[0] == NOWHERE:
                        hl.stray = len(hl.segments) - 1
        else:
            self.header.append(seg)
            if seg_id == "BHT":
                self.context.creation_date = self.field(seg, elements, seg_id, BHT.creation_date)
        return None

    def finish(self, position: int) -> Claim | None:
        """The SE at `position`: close what is open; returns the last claim, if one was open (or
        the first claim with no CLM: see `more`)."""
        done = self.close_at(position, len(self.stack))
        self.stack = []
        self.hl = None
        return done

    def close_at(self, position: int, ending: int) -> Claim | None:
        """Before the segment at `position`, the claim open ends, and the `ending` innermost HL loops
        open (their claims with no CLM: see `more`); returns the claim that ended first."""
        done = self.close_claim(position)
        ended = self.stack[len(self.stack) - ending:][::-1] if ending else []
        if done is None and ended:
            done = self.close_loops(ended, position)
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

    def start_hl(self, position: int, seg: Segment, elements: list[str]) -> list[HLNode]:
        """Open the HL loop of `seg`; returns the loops it ends, innermost first."""
        n = len(elements)
        number = elements[HL.number] if n > HL.number else ""
        parent_number = elements[HL.parent_number] if n > HL.parent_number else ""
        # In X12 a child loop follows its parent, so its parent is one of the open loops: close
        # the loops below it. An HL02 naming no open loop makes a top-level loop.
        stack = self.stack
        level = elements[HL.level] if n > HL.level else ""
        misplaced = False
        parent: HLNode | None = None
        if parent_number:
            for node in reversed(stack):
                if node.number == parent_number:
                    parent = node
                    break
        ended: list[HLNode] = []
        if parent is not None:
            while stack[-1] is not parent:
                ended.append(stack.pop())
        elif stack and level != "20" and (parent_number or level in ("22", "23")):
            # HL02 names no loop open above it: the hierarchy is broken. A child follows its
            # parent, so the loop read last stands above it; the node says so (its claims are
            # rejected) and a writer keeps the loops above it, as they came.
            parent = stack[-1]
            misplaced = True
        else:
            ended = stack[::-1]
            stack.clear()
            parent = None
        node = HLNode(position, number, parent_number, level, parent)
        node.misplaced = misplaced
        if parent is not None:
            parent.has_child = True
        node.segments.append(seg)
        stack.append(node)
        self.hl = node
        self.enter_hl_loop(level)
        return ended

    def enter_hl_loop(self, level: str) -> None:
        """The segments that follow are the HL loop's of level `level` (HL03): read through its
        tables in the guide (none for a level the guide does not have: nothing is read then)."""
        self.hl_loops = hl_loops(self.context.kind, level)
        self.hl_at = self.hl_loops.claim if self.hl_loops is not None else NOWHERE

    def hl_segment(self, seg: Segment, elements: list[str], seg_id: str) -> bool:
        """Read one segment of the open HL loop (those not in _HL_READS do nothing), in the loop the
        guide puts it in (model/loops.py, hl_loops). False: the guide has it nowhere there."""
        assert self.hl is not None
        loops = self.hl_loops
        if loops is None:
            return False  # an HL level the guide does not have (the validator says so): nothing is read
        found = loops.plain[self.hl_at].get(seg_id)  # (step's memo, without the call)
        if found is None:
            found = loops.step(self.hl_at, seg_id, elements, self.d.component)
        node, read = found
        if node == NOWHERE:
            return False
        self.hl_at = node
        if read == NOTHING:
            return True
        party = self.hl.party
        if read == PAYER_CLASS:
            party["payer_class"] = self.field(seg, elements, seg_id, SBR.claim_filing_indicator)
            return True
        name = _PARTY_OF_LOOP.get(loops.xid[node])
        if name is None:
            return True
        if read == PARTY:
            if name == "payer_id":
                # Of the payer's NM1 only its id is read: not a whole Party (four Fields) a claim.
                party["payer_id"] = self.field(seg, elements, "NM1", NM1.identifier)
            else:
                party[name] = self.party(seg, elements)
        elif read == BIRTH_DATE and name in ("subscriber", "patient") and name in party:
            party[name].birth_date = self.field(seg, elements, seg_id, DMG.birth_date)  # type: ignore[attr-defined]
        return True

    def party(self, seg: Segment, elements: list[str]) -> Party:
        # (NM103, NM104, NM108, NM109: read at once, a Field for each one that is not empty)
        n = len(elements)
        last = elements[NM1.last_name] if n > NM1.last_name else ""
        first = elements[NM1.first_name] if n > NM1.first_name else ""
        qualifier = elements[NM1.id_qualifier] if n > NM1.id_qualifier else ""
        identifier = elements[NM1.identifier] if n > NM1.identifier else ""
        # (Positional, in Party's order: a dataclass made with keywords costs twice as much.)
        return Party(
            Field(last, seg, "NM1", NM1.last_name) if last else None,  # last_name
            Field(first, seg, "NM1", NM1.first_name) if first else None,  # first_name
            Field(identifier, seg, "NM1", NM1.identifier) if identifier else None,  # identifier
            Field(qualifier, seg, "NM1", NM1.id_qualifier) if qualifier else None,  # id_qualifier
        )

    # -- claims ---------------------------------------------------------------------------

    def start_claim(self, position: int, seg: Segment, elements: list[str]) -> None:
        claim = Claim(self.context, position)
        claim.segments.append(seg)
        self.claim_header(claim, seg, elements)
        node = self.hl
        if node is not None:
            # The loop's strays, if any, are its own: shared with its claims, which they reject;
            # so are those of the loops above it.
            node.stray = None
            self.under(claim, node)
            while node is not None and not node.claimed:
                node.claimed = True
                node = node.parent
        self.open_claim(claim)

    def under(self, claim: Claim, node: HLNode) -> None:
        """`claim` hangs under the HL loop `node`: what the loops above say of it."""
        party = node.party
        claim.payer_class = party.get("payer_class")  # type: ignore[assignment]
        claim.payer_id = party.get("payer_id")  # type: ignore[assignment]
        claim.billing_provider = party.get("billing_provider") or Party()  # type: ignore[assignment]
        claim.subscriber = party.get("subscriber") or Party()  # type: ignore[assignment]
        claim.patient = party.get("patient")  # type: ignore[assignment]
        claim.hl = node

    def open_claim(self, claim: Claim) -> None:
        self.claims_read += 1
        self.claim = claim
        self.line = None
        if self.loops is None:
            self.loops = claim_loops(self.context.kind)
        self.node = self.loops.claim

    def close_loops(self, ended: list[HLNode], position: int) -> Claim | None:
        """The HL loops `ended` (innermost first) end before `position`, with no claim closing there:
        each that holds segments the guide does not place in it (from `stray` on) and no claim, in
        it or below it, gives a claim with no CLM. Returns the first, in input order; the others
        wait in `more`. The innermost, when it holds nothing of the kind and no loop either, is told
        to `empty_loop`."""
        innermost = ended[0]  # (the others stand above it: each has a loop below it)
        empty = not (innermost.claimed or innermost.has_child or innermost.stray is not None)
        if empty and self.empty_loop is not None:
            self.empty_loop(innermost)
        found = [self.claim_without_clm(node) for node in reversed(ended)
                 if node.stray is not None and not node.claimed]
        if not found:
            return None
        self.more.extend(found[1:])
        return found[0]

    def claim_without_clm(self, node: HLNode) -> Claim:
        """The segments after an HL loop's own (from `stray` on), in a loop that ends with no claim
        in it or below it: where a claim should be, with its CLM missing or damaged (a CLX, or an
        HI straight after the payer). They are delivered as a claim with no CLM, never dropped with
        a loop no claim goes out under; the pipeline rejects it and says why. (The loop's own
        segments stay the loop's.)"""
        assert node.stray is not None
        at, node.stray = node.stray, None
        segments = node.segments[at:]
        del node.segments[at:]
        first = node.position + at
        claim = Claim(self.context, first)
        claim.segments = segments
        self.under(claim, node)
        self.open_claim(claim)
        self.read_own(claim, segments, first)  # (no CLM first: it marks the claim missing_clm)
        done = self.close_claim(first + len(segments))
        assert done is not None
        return done

    def read_own(self, claim: Claim, segments: list[Segment], first: int, keep: bool = False) -> None:
        """Read a claim's own segments (positions from `first`) into `claim`, as feed reads them: its
        CLM's header, then each segment in the loop the guide puts it in. A first segment that is
        not a CLM makes it a claim with no CLM (claim_without_clm). `keep`: each segment keeps its
        elements (Segment.elements), for the checks that read it next."""
        self.claim = claim
        d = self.d
        for offset, seg in enumerate(segments):
            elements = seg.elements(d) if keep else seg.split(d)
            seg_id = elements[0]
            if seg_id[:1] in NOT_AN_ID:
                seg_id = segment_id(seg_id)
                elements = [seg_id, *elements[1:]]
            if offset == 0:
                if seg_id == "CLM":
                    self.claim_header(claim, seg, elements)
                    continue
                claim.missing_clm = True
            if seg_id in _CLAIM_READS:
                self.claim_segment(first + offset, seg, elements, seg_id)

    def claim_header(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        claim.claim_id = self.field(seg, elements, "CLM", CLM.claim_id)
        claim.total_charge = self.field(seg, elements, "CLM", CLM.total_charge)
        parts = elements[CLM.facility].split(self.d.component) if len(elements) > CLM.facility else []
        claim.facility_code = _component(seg, "CLM", CLM.facility, parts, CLM.facility_code)
        claim.frequency = _component(seg, "CLM", CLM.facility, parts, CLM.frequency)

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
        """Read one segment of the open claim (any segment: those not in _CLAIM_READS do nothing),
        in the loop the guide puts it in (model/loops.py)."""
        claim = self.claim
        assert claim is not None
        loops = self.loops
        if seg_id == "LX":
            # Every LX starts a service line, wherever it stands: a line is never lost in another loop.
            if self.line is not None:
                self.line.end = position
            self.line = ServiceLine(self.field(seg, elements, seg_id, LX.number), position)
            claim.lines.append(self.line)
            self.node = loops.line
            return
        found = loops.plain[self.node].get(seg_id)  # (step's memo, without the call: most segments)
        if found is None:
            found = loops.step(self.node, seg_id, elements, self.d.component)
        node, read = found
        if node == NOWHERE:
            return  # out of order or unknown: the validator says so; the model reads nothing of it
        self.node = node
        if read == NOTHING:
            return
        if read == CLAIM_SEGMENT:
            if seg_id == "HI":
                self.diagnoses(claim, seg, elements)
            elif seg_id == "REF" and _element(elements, REF.qualifier) == "G1":
                found_ref = self.field(seg, elements, seg_id, REF.value)
                if found_ref is not None:
                    claim.prior_auth.append(found_ref)
            elif seg_id in ("PWK", "NTE"):
                self.documentation(claim, seg, elements, seg_id)
            elif seg_id == "DTP" and _element(elements, DTP.qualifier) == "434":
                value = self.field(seg, elements, seg_id, DTP.date)
                if value is not None:
                    claim.statement_dates = DateRange.read(_element(elements, DTP.date_format), value)
            return
        if read == CLAIM_PROVIDER:  # a 2310 loop
            entity = _element(elements, NM1.entity)
            if entity == "82":
                claim.rendering_provider = self.party(seg, elements)
            elif entity == "71":
                claim.attending_provider = self.party(seg, elements)
            return
        line = self.line
        if line is None:
            return
        if read == LINE_SEGMENT:
            self.line_segment(line, seg, elements, seg_id)
        elif read == DRUG_SEGMENT:
            if seg_id == "CTP":
                line.ndc_quantity = self.field(seg, elements, seg_id, CTP.quantity)
                line.ndc_unit = self.field(seg, elements, seg_id, CTP.unit, CTP.unit_code)
        elif read == LINE_PROVIDER:  # a 2420 loop
            if _element(elements, NM1.entity) == "82":
                line.rendering_provider = self.party(seg, elements)
        elif read == DRUG_IDENTIFICATION:  # 2410
            line.ndc_qualifier = self.field(seg, elements, seg_id, LIN.id_qualifier)
            line.ndc = self.field(seg, elements, seg_id, LIN.ndc)

    def line_segment(self, line: ServiceLine, seg: Segment, elements: list[str], seg_id: str) -> None:
        if seg_id == "SV1":
            # (Fields made here rather than through `field`: one SV1 a service line)
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            self.procedure(line, seg, elements, seg_id, SV1.procedure)
            n = len(elements)
            value = elements[SV1.charge] if n > SV1.charge else ""
            line.charge = Field(value, seg, seg_id, SV1.charge) if value else None
            value = elements[SV1.unit_basis] if n > SV1.unit_basis else ""
            line.unit_basis = Field(value, seg, seg_id, SV1.unit_basis) if value else None
            value = elements[SV1.units] if n > SV1.units else ""
            line.units = Field(value, seg, seg_id, SV1.units) if value else None
            if n > SV1.pointers and elements[SV1.pointers]:
                pointers = line.pointers
                for comp, pointer in enumerate(elements[SV1.pointers].split(self.d.component), start=1):
                    if pointer:
                        pointers.append(Field(pointer, seg, seg_id, SV1.pointers, comp))
        elif seg_id == "DTP":
            if _element(elements, DTP.qualifier) == "472":
                value = self.field(seg, elements, seg_id, DTP.date)
                if value is not None:
                    line.service_date = DateRange.read(_element(elements, DTP.date_format), value)
        elif seg_id == "SV2":
            line.procedure_segment, line.procedure_seg_id = seg, seg_id
            line.revenue_code = self.field(seg, elements, seg_id, SV2.revenue_code)
            self.procedure(line, seg, elements, seg_id, SV2.procedure)
            line.charge = self.field(seg, elements, seg_id, SV2.charge)
            line.unit_basis = self.field(seg, elements, seg_id, SV2.unit_basis)
            line.units = self.field(seg, elements, seg_id, SV2.units)
        elif seg_id == "REF" and _element(elements, REF.qualifier) == "G1":
            found = self.field(seg, elements, seg_id, REF.value)
            if found is not None:
                line.prior_auth.append(found)
        elif seg_id in ("PWK", "NTE"):
            self.documentation(line, seg, elements, seg_id)

    def documentation(self, holder: Claim | ServiceLine, seg: Segment, elements: list[str], seg_id: str) -> None:
        """PWK (attachment: its report type, PWK01) and NTE (note text, NTE02) at 2300 or 2400."""
        found = self.field(seg, elements, seg_id, PWK.report_type if seg_id == "PWK" else NTE.text)
        if found is not None:
            (holder.attachments if seg_id == "PWK" else holder.notes).append(found)

    def procedure(self, line: ServiceLine, seg: Segment, elements: list[str], seg_id: str, pos: int) -> None:
        # The composite is split once for its seven components.
        parts = elements[pos].split(self.d.component) if pos < len(elements) else []
        n = len(parts)
        value = parts[PROCEDURE.qualifier - 1] if n >= PROCEDURE.qualifier else ""
        line.qualifier = Field(value, seg, seg_id, pos, PROCEDURE.qualifier) if value else None
        value = parts[PROCEDURE.code - 1] if n >= PROCEDURE.code else ""
        line.code = Field(value, seg, seg_id, pos, PROCEDURE.code) if value else None
        if n >= PROCEDURE.first_modifier:
            modifiers = line.modifiers
            for comp in range(PROCEDURE.first_modifier, min(n, PROCEDURE.last_modifier) + 1):
                value = parts[comp - 1]
                if value:
                    modifiers.append(Field(value, seg, seg_id, pos, comp))
        value = parts[PROCEDURE.description - 1] if n >= PROCEDURE.description else ""
        line.description = Field(value, seg, seg_id, pos, PROCEDURE.description) if value else None

    def diagnoses(self, claim: Claim, seg: Segment, elements: list[str]) -> None:
        component = self.d.component
        found = claim.diagnoses
        # the position the next principal or other code takes: those before it, on any HI
        pointed = sum(1 for d in found if d.position) if found else 0
        for pos in range(1, len(elements)):
            parts = elements[pos].split(component)
            if len(parts) < 2:
                continue
            qualifier, code = parts[HI.qualifier - 1], parts[HI.code - 1]
            if not qualifier or not code:
                continue
            role = _DIAGNOSIS_ROLES.get(qualifier)
            if role is None:
                continue  # procedures, occurrences, values, conditions: not diagnoses
            position = 0
            if role == "principal" or role == "other":
                pointed += 1
                position = pointed
            found.append(Diagnosis(Field(qualifier, seg, "HI", pos, HI.qualifier), Field(code, seg, "HI", pos, HI.code),
                                   position, role))


# The segment ids claim_segment reads or that move it to another loop (ClaimLoops.moves, held to this
# set by tests/test_claim_loops.py): no other segment of a claim (N3, N4, PRV, AMT, ...) says
# anything the model keeps, so feed does not hand them on.
_CLAIM_READS = frozenset(("LX", "NM1", "SBR", "HI", "REF", "PWK", "NTE", "DTP", "SV1", "SV2", "SVD", "LQ",
                          "CTP", "LIN"))
# Those hl_segment reads.
_HL_READS = frozenset(("SBR", "NM1", "DMG"))
# The party each 2010 loop of the guide names, as the HL loops hold them (and as claims take them).
_PARTY_OF_LOOP = {"2010AA": "billing_provider", "2010BA": "subscriber", "2010BB": "payer_id", "2010CA": "patient"}


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

    `segments` are the claim's own, from its CLM (if it has one) up to its end.
    """
    builder = TransactionReader.for_claim(claim.transaction, delimiters)
    fresh = Claim(claim.transaction, claim.first)
    for name in ("billing_provider", "subscriber", "patient", "payer_class", "payer_id", "hl"):
        setattr(fresh, name, getattr(claim, name))
    fresh.segments = list(segments)
    builder.read_own(fresh, fresh.segments, claim.first)
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
