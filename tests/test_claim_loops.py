"""The claim model reads a claim's loops from the compiled guide (model/loops.py, issue 11 §5)."""

from __future__ import annotations

import io

import pytest
from conftest import CORPUS, SAMPLES, model_claims

from scrubber.model.build import _CLAIM_READS, _HL_READS
from scrubber.model.loops import BIRTH_DATE, NOTHING, NOWHERE, PARTY, PAYER_CLASS, claim_loops, hl_loops

COB = CORPUS / "LinuxForHealth__x12__demo.cob.example3.C.837"


def _claims(data: bytes) -> list:
    return [claim for claim, _ in model_claims(io.BytesIO(data))]


def _loop(kind: str, xid: str) -> int:
    loops = claim_loops(kind)
    return next(node for node in [loops.claim, *loops.first_id] if loops.xid[node] == xid)


def _step(kind: str, start: str, segment: str) -> str | None:
    loops = claim_loops(kind)
    elements = segment.split("*")
    node, _read = loops.step(_loop(kind, start), elements[0], elements, ":")
    return None if node == NOWHERE else loops.xid[node]


@pytest.mark.parametrize(("kind", "start", "segment", "goes_to"), [
    ("837P", "2300", "NM1*82*1*DOE*JANE****XX*1234567893", "2310B"),  # the rendering provider
    ("837I", "2300", "NM1*82*1*DOE*JANE****XX*1234567893", "2310D"),  # the 837I's
    ("837I", "2300", "NM1*71*1*DOE*JANE****XX*1234567893", "2310A"),  # attending
    ("837P", "2310B", "NM1*77*2*CLINIC*****XX*1234567893", "2310C"),  # the next 2310 loop
    ("837P", "2310B", "SBR*P*18*******CI", "2320"),
    ("837P", "2330B", "NM1*82*1", "2330D"),  # the other payer's rendering provider: not the claim's
    ("837P", "2300", "HI*ABK:C8450", "2300"),
    ("837P", "2310B", "HI*ABK:C8450", None),  # a 2300 segment after a 2310 loop: out of order
    ("837P", "2400", "SV1*HC:J9032*100*UN*1***1", "2400"),
    ("837I", "2400", "SV1*HC:J9032*100*UN*1***1", None),  # an 837P segment in an 837I
    ("837P", "2400", "LIN**N4*72893000201", "2410"),
    ("837P", "2410", "CTP****200*ME", "2410"),
    ("837P", "2410", "NM1*82*1*DOE*JANE****XX*1234567893", "2420A"),
    ("837P", "2430", "NM1*82*1*DOE*JANE****XX*1234567893", None),  # 2420A comes before 2430
    ("837P", "2420A", "DTP*472*D8*20261102", None),  # a 2400 segment after a 2420 loop
    ("837P", "2300", "NM1*XX*1*DOE", None),  # an unknown qualifier: no loop, as the validator finds none
])
def test_a_segment_goes_where_the_guide_puts_it(kind, start, segment, goes_to):
    assert _step(kind, start, segment) == goes_to


@pytest.mark.parametrize("kind", ["837P", "837I"])
def test_the_model_looks_at_every_segment_that_can_change_the_loop(kind):
    """TransactionReader.feed hands a claim's segment on only when its id is in _CLAIM_READS: every
    id that can take the model to another loop must be there, whatever the guide's tables say."""
    assert claim_loops(kind).moves <= _CLAIM_READS


def test_the_other_payers_rendering_provider_is_not_the_claims():
    """Regression: an NM1*82 in loop 2330D (the other payer's rendering provider, with no NPI) was
    read as the claim's rendering provider, over the 2310B one: the model tracked "a loop below 2300"
    rather than which. The NPI check now sees the 2310B NPI (and finds its check digit wrong)."""
    (claim,) = _claims(COB.read_bytes())
    assert claim.rendering_provider is not None and claim.rendering_provider.identifier is not None
    assert claim.rendering_provider.identifier.value == "1999996666"
    assert claim.rendering_provider.identifier.segment.text.startswith("NM1*82*1*KILDARE")


def test_the_samples_read_the_same_providers_and_lines():
    """The samples' providers, lines and NDCs, as the claims say them (every loop in its place)."""
    for path in sorted(SAMPLES.glob("*.837")):
        for claim in _claims(path.read_bytes()):
            assert all(line.procedure_segment is not None for line in claim.lines), (path.name, claim.id)
            if claim.rendering_provider is not None:
                assert claim.rendering_provider.identifier.segment.text.split("*")[1] == "82"


def test_every_element_the_model_reads_is_where_the_guide_puts_it():
    """model/elements.py names each element the model reads; the compiled guide (837P and 837I maps)
    has the element of that reference designator at that position (and component)."""
    from scrubber.model import elements
    from scrubber.x12.guide.seg_rules import CompositeRule
    from scrubber.x12.guide.validator import segments_rules

    where: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for map_file in ("837.5010.X222.A1.xml", "837Q3.I.5010.X223.A1.xml"):
        for rule in segments_rules(map_file).values():
            for position, element in enumerate(rule.elements, start=1):
                where.setdefault((rule.seg_id, element.refdes), set()).add((position, 0))
                if isinstance(element, CompositeRule):
                    for component, sub in enumerate(element.elements, start=1):
                        where.setdefault((rule.seg_id, sub.refdes), set()).add((position, component))
    for (table, attribute), (seg_id, refdes) in elements.GUIDE.items():
        value = getattr(getattr(elements, table), attribute)
        found = where.get((seg_id, refdes))
        assert found, f"{refdes} is not in the guide's {seg_id}"
        if "-" in refdes:  # a component: its position in the composite
            assert value in {component for _, component in found}, (table, attribute, refdes, found)
        else:
            assert (value, 0) in found, (table, attribute, refdes, found)
    # and every table entry is named in GUIDE
    named = {(table, attribute) for table, attribute in elements.GUIDE}
    for table in ("BHT", "HL", "SBR", "NM1", "DMG", "CLM", "LX", "REF", "PWK", "NTE", "DTP", "LIN", "CTP", "SV1",
                  "SV2", "PROCEDURE", "HI"):
        for attribute in vars(getattr(elements, table)):
            if not attribute.startswith("_"):
                assert (table, attribute) in named, (table, attribute)


def _hl_step(kind: str, level: str, start: str, segment: str) -> tuple[str | None, int]:
    loops = hl_loops(kind, level)
    node = loops.claim if start == loops.xid[loops.claim] else next(n for n in loops.first_id if loops.xid[n] == start)
    elements = segment.split("*")
    found, read = loops.step(node, elements[0], elements, ":")
    return (None if found == NOWHERE else loops.xid[found]), read


@pytest.mark.parametrize(("kind", "level", "start", "segment", "goes_to", "read"), [
    ("837P", "20", "2000A", "NM1*85*2*CLINIC*****XX*1234567893", "2010AA", PARTY),
    ("837P", "20", "2000A", "NM1*117*2*CLINIC*****XX*1234567893", None, NOTHING),  # the validator: not found
    ("837P", "22", "2000B", "SBR*P*18*******CI", "2000B", PAYER_CLASS),
    ("837P", "22", "2000B", "NM1*IL*1*DOE*JOHN****MI*M1", "2010BA", PARTY),
    ("837P", "22", "2010BA", "DMG*D8*19600101*M", "2010BA", BIRTH_DATE),
    ("837P", "22", "2010BA", "NM1*PR*2*PAYER*****PI*P1", "2010BB", PARTY),
    ("837P", "22", "2000B", "NM1*QC*1*DOE*JANE", None, NOTHING),  # a patient's loop is 2000C's
    ("837I", "23", "2000C", "NM1*QC*1*DOE*JANE", "2010CA", PARTY),
    ("837I", "23", "2000C", "NM1*IL*1*DOE*JOHN****MI*M1", None, NOTHING),  # no subscriber loop in 2000C
])
def test_an_hl_loops_segment_goes_where_the_guide_puts_it(kind, level, start, segment, goes_to, read):
    assert _hl_step(kind, level, start, segment) == (goes_to, read)


@pytest.mark.parametrize("kind", ["837P", "837I"])
def test_the_model_looks_at_every_segment_that_can_change_an_hl_loop(kind):
    """TransactionReader.feed hands an HL loop's segment on only when its id is in _HL_READS."""
    for level in ("20", "22", "23"):
        assert hl_loops(kind, level).moves <= _HL_READS
    assert hl_loops(kind, "99") is None  # a level the guide does not have: nothing is read
