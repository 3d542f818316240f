"""The pyx12 internals the project touches (scrubber.x12.ig.PYX12_INTERNALS) are there, with the
parameters we call them with: a pyx12 release that changes one fails here, naming it, rather than
somewhere deep in a scrub."""

from __future__ import annotations

import importlib
import inspect
import logging

import pytest
import pyx12.map_if
import pyx12.params
import pyx12.x12file

from scrubber.x12 import ig
from scrubber.x12.tokenizer import Delimiters, Segment

logging.getLogger("pyx12").setLevel(logging.CRITICAL)


def _resolve(module: str, attribute: str):
    found = importlib.import_module(module)
    for part in attribute.split("."):
        if not hasattr(found, part):
            pytest.fail(f"pyx12 changed: {module}.{attribute} is gone ({part!r} not found)")
        found = getattr(found, part)
    return found


@pytest.mark.parametrize(("module", "attribute", "parameters"), ig.PYX12_INTERNALS,
                         ids=[f"{m}.{a}" for m, a, _ in ig.PYX12_INTERNALS])
def test_each_internal_is_there_with_our_parameters(module, attribute, parameters):
    found = _resolve(module, attribute)
    if parameters is None:
        return
    assert callable(found), f"pyx12 changed: {module}.{attribute} is no longer callable"
    signature = inspect.signature(found)
    names = list(signature.parameters)
    assert names[: len(parameters)] == list(parameters), (
        f"pyx12 changed: {module}.{attribute}{signature}; we call it with ({', '.join(parameters)})")
    required = [p.name for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert set(required) <= set(parameters), (
        f"pyx12 changed: {module}.{attribute}{signature} now requires {sorted(set(required) - set(parameters))}")


def test_the_reader_attributes_we_set_are_read_by_pyx12():
    """GuideValidator builds an X12Reader without a file and sets its delimiters itself."""
    reader = ig._reader(Delimiters("*", ":", "^", "~"))
    for name in ig.PYX12_READER_ATTRIBUTES:
        assert hasattr(reader, name), f"pyx12 changed: X12Reader has no {name!r} any more"
    # and the one check it makes with them still works: an ST control number counted
    seg = pyx12.segment.Segment("ST*837*0001*005010X222A1", "~", "*", ":")
    reader._parse_segment(seg)
    assert reader.get_seg_count() == 1, "pyx12 changed: X12Reader no longer counts from the ST"


def test_map_nodes_have_the_attributes_we_read():
    root = pyx12.map_if.load_map_file("x12.control.00501.xml", pyx12.params.params())
    loop = root.getnodebypath("/ISA_LOOP")
    seg = root.getnodebypath("/ISA_LOOP/ISA")
    for node in (loop, seg):
        for name in ig.PYX12_NODE_ATTRIBUTES:
            if name == "pos_map" and node is seg:
                continue
            assert hasattr(node, name), f"pyx12 changed: {type(node).__name__} has no {name!r}"
        assert node.get_path().startswith("/ISA_LOOP"), "pyx12 changed: get_path()"


def test_the_error_handler_calls_pyx12_makes_are_the_ones_we_answer():
    """pyx12's walker and segment checks call these on the err_handler we hand them."""
    sources = inspect.getsource(importlib.import_module("pyx12.map_walker")) + \
        inspect.getsource(importlib.import_module("pyx12.map_if._segment"))
    calls = {name for name in ("add_seg", "seg_error", "add_ele", "ele_error") if f"errh.{name}(" in sources}
    assert calls == {"add_seg", "seg_error", "add_ele", "ele_error"}, (
        f"pyx12 changed: its walker and segment checks now call errh.{sorted(calls)}")
    for name in ig.PYX12_ERRH_CALLS:
        assert hasattr(ig._Collector, name)


def test_the_pyx12_driver_still_validates_through_those_internals():
    """End to end through the internals: a segment out of place is an error of code 1."""
    validator = ig.GuideValidator(Delimiters("*", ":", "^", "~"))
    validator.feed(Segment(1, 0, "ISA*00*          *00*          *ZZ*A              *ZZ*B              "
                                 "*260101*1200*^*00501*000000001*0*P*:", ""), "ISA", None)
    validator.feed(Segment(2, 0, "XYZ*1", ""), "XYZ", None)
    codes = [e.code for e in validator.take_errors()]
    assert "1" in codes, codes
