"""The elements the claim model reads, named: a table per segment, as stupidedi writes its guides
(issue 11 §5).

Each table gives the element's position in its segment (1 for XX01) under a name from the claim
model, and `GUIDE` the implementation guide's reference designator for it (SV1.units is SV104).
tests/test_claim_loops.py holds every entry to the compiled guide (pyx12's maps of the 837P and
the 837I): a position that drifts from the guide fails there, not on a claim.
The tables are plain class attributes, read as constants where the model reads every segment.
"""

from __future__ import annotations


class BHT:
    creation_date = 4


class HL:
    number = 1
    parent_number = 2
    level = 3


class SBR:
    claim_filing_indicator = 9


class NM1:
    entity = 1
    last_name = 3
    first_name = 4
    id_qualifier = 8
    identifier = 9


class DMG:
    birth_date = 2


class CLM:
    claim_id = 1
    total_charge = 2
    facility = 5  # a composite: FACILITY's components
    # (CLM05) the components of the facility composite
    facility_code = 1
    frequency = 3


class LX:
    number = 1


class REF:
    qualifier = 1
    value = 2


class PWK:
    report_type = 1


class NTE:
    text = 2


class DTP:
    qualifier = 1
    date_format = 2
    date = 3


class LIN:
    id_qualifier = 2
    ndc = 3


class CTP:
    quantity = 4
    unit = 5  # a composite: its first component, the unit of measure
    unit_code = 1


class SV1:
    procedure = 1  # a composite: PROCEDURE's components
    charge = 2
    unit_basis = 3
    units = 4
    pointers = 7  # a composite of up to four diagnosis code pointers


class SV2:
    revenue_code = 1
    procedure = 2  # a composite: PROCEDURE's components
    charge = 3
    unit_basis = 4
    units = 5


class PROCEDURE:
    """The components of SV101 and SV202 (Composite Medical Procedure Identifier)."""

    qualifier = 1
    code = 2
    first_modifier = 3
    last_modifier = 6
    description = 7


class HI:
    """Each element of HI is a Health Care Code Information composite."""

    qualifier = 1
    code = 2


# Each entry's segment and reference designator in the guide: (table, attribute) -> (segment id,
# designator). A composite's component is named with its designator (SV101-02); the procedure's
# components are those of SV101 (SV202's are the same). tests/test_claim_loops.py finds each in the
# compiled guide of the 837P or the 837I at the table's position.
GUIDE: dict[tuple[str, str], tuple[str, str]] = {
    ("BHT", "creation_date"): ("BHT", "BHT04"),
    ("HL", "number"): ("HL", "HL01"),
    ("HL", "parent_number"): ("HL", "HL02"),
    ("HL", "level"): ("HL", "HL03"),
    ("SBR", "claim_filing_indicator"): ("SBR", "SBR09"),
    ("NM1", "entity"): ("NM1", "NM101"),
    ("NM1", "last_name"): ("NM1", "NM103"),
    ("NM1", "first_name"): ("NM1", "NM104"),
    ("NM1", "id_qualifier"): ("NM1", "NM108"),
    ("NM1", "identifier"): ("NM1", "NM109"),
    ("DMG", "birth_date"): ("DMG", "DMG02"),
    ("CLM", "claim_id"): ("CLM", "CLM01"),
    ("CLM", "total_charge"): ("CLM", "CLM02"),
    ("CLM", "facility"): ("CLM", "CLM05"),
    ("CLM", "facility_code"): ("CLM", "CLM05-01"),
    ("CLM", "frequency"): ("CLM", "CLM05-03"),
    ("LX", "number"): ("LX", "LX01"),
    ("REF", "qualifier"): ("REF", "REF01"),
    ("REF", "value"): ("REF", "REF02"),
    ("PWK", "report_type"): ("PWK", "PWK01"),
    ("NTE", "text"): ("NTE", "NTE02"),
    ("DTP", "qualifier"): ("DTP", "DTP01"),
    ("DTP", "date_format"): ("DTP", "DTP02"),
    ("DTP", "date"): ("DTP", "DTP03"),
    ("LIN", "id_qualifier"): ("LIN", "LIN02"),
    ("LIN", "ndc"): ("LIN", "LIN03"),
    ("CTP", "quantity"): ("CTP", "CTP04"),
    ("CTP", "unit"): ("CTP", "CTP05"),
    ("CTP", "unit_code"): ("CTP", "CTP05-01"),
    ("SV1", "procedure"): ("SV1", "SV101"),
    ("SV1", "charge"): ("SV1", "SV102"),
    ("SV1", "unit_basis"): ("SV1", "SV103"),
    ("SV1", "units"): ("SV1", "SV104"),
    ("SV1", "pointers"): ("SV1", "SV107"),
    ("SV2", "revenue_code"): ("SV2", "SV201"),
    ("SV2", "procedure"): ("SV2", "SV202"),
    ("SV2", "charge"): ("SV2", "SV203"),
    ("SV2", "unit_basis"): ("SV2", "SV204"),
    ("SV2", "units"): ("SV2", "SV205"),
    ("PROCEDURE", "qualifier"): ("SV1", "SV101-01"),
    ("PROCEDURE", "code"): ("SV1", "SV101-02"),
    ("PROCEDURE", "first_modifier"): ("SV1", "SV101-03"),
    ("PROCEDURE", "last_modifier"): ("SV1", "SV101-06"),
    ("PROCEDURE", "description"): ("SV1", "SV101-07"),
    ("HI", "qualifier"): ("HI", "HI01-01"),
    ("HI", "code"): ("HI", "HI01-02"),
}
