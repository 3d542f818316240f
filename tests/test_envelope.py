"""Envelopes: versions read and refused, several interchanges, groups and sets, counts fixed."""

from __future__ import annotations

import pytest
from conftest import SAMPLES
from pyx12_check import pyx12_valid

from scrubber.errors import InputError

CLEAN = (SAMPLES / "clean_837p.837").read_bytes()
CLEAN_I = (SAMPLES / "clean_837i.837").read_bytes()


def test_a_clean_file_comes_out_byte_for_byte(scrub):
    result = scrub(CLEAN)
    assert result.corrected == CLEAN
    assert result.report["errors"] == []


@pytest.mark.parametrize(("found", "kind"), [("005010X222A2", CLEAN), ("005010X223A1", CLEAN_I),
                                             ("005010X223A3", CLEAN_I)])
def test_later_errata_are_read_as_the_guide_pyx12_has(scrub, found, kind):
    read_as = b"005010X222A1" if kind is CLEAN else b"005010X223A2"
    data = kind.replace(read_as, found.encode())
    result = scrub(data)
    assert result.report["summary"]["rejected"] == 0
    assert result.corrected == data


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (b"*00501*", b"*00401*", "X12 4010 interchange"),
        (b"GS*HC*", b"GS*HP*", "claim payments (835)"),
        (b"X*005010X222A1~\nST", b"X*005010X224A2~\nST", "837D (dental)"),
        (b"X*005010X222A1~\nST", b"X*004010X098A1~\nST", "837P 4010"),
        (b"ST*837*0101*005010X222A1", b"ST*835*0101*005010X222A1", "not an 837"),
    ],
)
def test_other_versions_and_transactions_are_refused_by_name(scrub, old, new, says):
    with pytest.raises(InputError) as caught:
        scrub(CLEAN.replace(old, new, 1))
    assert says in str(caught.value)
    assert caught.value.segment is not None


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (b"IEA*1*000000101", b"IEA*1*000000999", "IEA02 '000000999' does not match ISA13"),
        (b"GE*1*101~", b"GE*1*999~", "GE02 '999' does not match GS06"),
        (b"*0101~\nGE", b"*0999~\nGE", "SE02 '0999' does not match ST02"),
        (b"GE*1*101~\n", b"", "IEA found before the functional group was closed"),
        (b"IEA*1*000000101~\n", b"", "ends before the interchange is closed"),
        (b"\nSE*", b"\nXX*", "GE found before the transaction set was closed"),
    ],
)
def test_an_envelope_that_cannot_be_trusted_fails_the_file(scrub, old, new, says):
    with pytest.raises(InputError) as caught:
        scrub(CLEAN.replace(old, new, 1))
    assert says in str(caught.value)


def _segment_count(data: bytes) -> int:
    st = data.index(b"ST*837")
    return data[st : data.index(b"\nSE*", st)].count(b"~") + 1


@pytest.mark.parametrize(("trailer", "good"), [(b"\nSE*", None), (b"\nGE*", b"\nGE*1*"), (b"\nIEA*", b"\nIEA*1*")])
def test_wrong_counts_are_fixed_not_fatal(scrub, trailer, good):
    if good is None:
        good = b"\nSE*%d*" % _segment_count(CLEAN)
    data = CLEAN.replace(good, trailer + b"7*", 1)
    assert data != CLEAN
    result = scrub(data)
    assert result.report["summary"]["accepted"] == 7
    assert result.corrected == CLEAN
    [note] = result.report["errors"]
    assert note["code"] == "envelope.count" and note["fixed"] is True


def test_several_interchanges_groups_and_sets_in_one_file(scrub):
    one = CLEAN.decode()
    isa, rest = one.split("\n", 1)
    gs, rest = rest.split("\n", 1)
    st_to_se = rest[: rest.index("GE*")]
    second_set = st_to_se.replace("0101", "0102")
    two_sets = f"{isa}\n{gs}\n{st_to_se}{second_set}GE*2*101~\n"
    second_group = f"{gs.replace('*101*', '*102*')}\n{st_to_se}GE*1*102~\n"
    first = f"{two_sets}{second_group}IEA*2*000000101~\n"
    second = one.replace("000000101", "000000102")
    data = (first + second).encode()
    assert pyx12_valid(data)
    result = scrub(data)
    assert result.report["summary"] == {**result.report["summary"], "claims": 28, "accepted": 28}
    assert result.corrected == data


def test_data_after_the_last_interchange_fails_the_file(scrub):
    with pytest.raises(InputError) as caught:
        scrub(CLEAN + b"HL*1**20*1~\n")
    assert "outside a transaction set" in str(caught.value)
