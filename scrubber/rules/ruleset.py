"""Everything the rules read, loaded once from a rules directory (the built-in one by default)."""

from __future__ import annotations

import datetime as dt
import functools
from importlib import resources
from pathlib import Path

from ..errors import RuleDataError
from .catalog import Rule, load_catalog
from .code_tables import HcpcsTable, Icd10Table, NdcCrosswalk, packaged_icd10_code_list
from .reference import DrugCatalog, Modifier, PayerPolicies, load_drugs, load_modifiers, load_payers
from .schema import check_table, read_toml

_TABLES_SPEC = {
    "hcpcs": ("table", True),
    "ndc_crosswalk": ("table", True),
    "icd10cm": ("table", True),
}
_HCPCS_SPEC = {
    "file": ("str", True),
    "version": ("str", True),
    "terminations_listed_from": ("date", True),
    "valid_through": ("date", True),
    "source": ("str", True),
    "unclassified_drug_codes": ("list[hcpcs]", True),
    "drug_code_prefixes": ("list[str]", True),
}
_CROSSWALK_SPEC = {
    "file": ("str", True),
    "version": ("str", True),
    "valid_from": ("date", True),
    "valid_through": ("date", True),
    "source": ("str", True),
}
_ICD10_SPEC = {
    "file": ("str", False),
    "version": ("str", True),
    "valid_from": ("date", True),
    "valid_through": ("date", True),
    "icd10_from": ("date", True),
    "source": ("str", True),
}


def builtin_rules_dir() -> Path:
    """The rules/ folder shipped inside the package (or, run from a source checkout without
    installing, the checkout's rules/ folder)."""
    try:
        return Path(str(resources.files("scrubber.builtin_rules")))
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "rules"
        if (checkout / "catalog.toml").is_file():
            return checkout
        expected = "the built-in rules, installed with the package"
        raise RuleDataError("scrubber.builtin_rules", "(package)", expected) from None


class RuleSet:
    """The catalog, the reference data and the code tables. Code tables load on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.catalog: dict[str, Rule] = load_catalog(directory / "catalog.toml")
        self.drugs: DrugCatalog = load_drugs(directory / "drugs.toml")
        self.modifiers: dict[str, Modifier] = load_modifiers(directory / "modifiers.toml")
        self.payers: PayerPolicies = load_payers(directory / "payers.toml")
        tables_path = directory / "code_tables.toml"
        self._tables = read_toml(tables_path)
        check_table(tables_path, "", self._tables, _TABLES_SPEC)
        check_table(tables_path, "hcpcs", self._tables["hcpcs"], _HCPCS_SPEC)
        check_table(tables_path, "ndc_crosswalk", self._tables["ndc_crosswalk"], _CROSSWALK_SPEC)
        check_table(tables_path, "icd10cm", self._tables["icd10cm"], _ICD10_SPEC)
        self._icd10_override: Path | None = None

    def use_icd10_code_file(self, path: Path, version: str, valid_from: dt.date, valid_through: dt.date) -> None:
        """Read ICD-10-CM codes from a (newer) CMS code file instead of the packaged list."""
        self._icd10_override = path
        self._tables["icd10cm"] = dict(self._tables["icd10cm"], version=version,
                                       valid_from=valid_from, valid_through=valid_through)
        self.__dict__.pop("icd10", None)

    def _file(self, name: str) -> Path:
        path = self.directory / self._tables[name]["file"]
        if not path.is_file():
            raise RuleDataError(str(self.directory / "code_tables.toml"), f"{name}.file", f"an existing file ({path})")
        return path

    @functools.cached_property
    def hcpcs(self) -> HcpcsTable:
        meta = self._tables["hcpcs"]
        return HcpcsTable(self._file("hcpcs"), meta["version"], meta["terminations_listed_from"],
                          meta["valid_through"], frozenset(meta["unclassified_drug_codes"]))

    @functools.cached_property
    def ndc_crosswalk(self) -> NdcCrosswalk:
        return NdcCrosswalk(self._file("ndc_crosswalk"), self._tables["ndc_crosswalk"]["version"])

    @functools.cached_property
    def icd10(self) -> Icd10Table:
        meta = self._tables["icd10cm"]
        path = self._icd10_override or (self._file("icd10cm") if "file" in meta else packaged_icd10_code_list())
        return Icd10Table.from_code_list(path, meta["version"], meta["valid_from"], meta["valid_through"])

    @property
    def drug_code_prefixes(self) -> tuple[str, ...]:
        return tuple(self._tables["hcpcs"]["drug_code_prefixes"])

    @property
    def icd10_from(self) -> dt.date:
        return self._tables["icd10cm"]["icd10_from"]

    def table_versions(self) -> dict[str, str]:
        return {name: meta["version"] for name, meta in self._tables.items()}

    def rule(self, rule_id: str) -> Rule:
        return self.catalog[rule_id]


def load_rules(directory: Path | None = None) -> RuleSet:
    """Load and check a rules directory (the built-in rules when None)."""
    return RuleSet(directory or builtin_rules_dir())
