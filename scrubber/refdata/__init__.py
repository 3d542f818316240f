"""Reference data from CMS, kept as a store by `scrubber data import` and looked up by the rules.

    from scrubber.refdata import ReferenceData
    data = ReferenceData.open()                         # shipped store + $SCRUBBER_DATA
    drug = data.drug("J9312", date(2025, 11, 3))        # DrugReference, or None
    drug.billing_unit, drug.payment_limit, drug.items, drug.opps_status, drug.mue, drug.outside
    data.codes_for_ndc("50242-0051-21", date(2025, 11, 3))

It sits below the rules (it imports nothing of the claim model, the rules or the outputs).
"""

from .columns import KINDS
from .dosage import Dosage, parse_dosage
from .errors import ReferenceDataError
from .lookup import (
    BUILTIN_STORE,
    DATA_ENV,
    CrosswalkItem,
    DrugReference,
    MueLimit,
    QuarterUsed,
    ReferenceData,
    ndc11,
)
from .store import SourceInfo, add_sources, read_manifest

__all__ = [
    "BUILTIN_STORE",
    "DATA_ENV",
    "KINDS",
    "CrosswalkItem",
    "Dosage",
    "DrugReference",
    "MueLimit",
    "ParsedSource",
    "QuarterUsed",
    "ReferenceData",
    "ReferenceDataError",
    "SourceInfo",
    "add_sources",
    "ndc11",
    "parse_dosage",
    "read_files",
    "read_manifest",
]


def __getattr__(name: str) -> object:
    # The readers of CMS's files (and zipfile with them) load on import only: a lookup needs none.
    if name in ("ParsedSource", "read_files"):
        from . import sources

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
