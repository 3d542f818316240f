"""Everything the rules read, loaded once from the built-in rules and any site layers on top."""

from __future__ import annotations

import datetime as dt
import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RuleDataError
from . import cms_data
from .catalog import Rule, load_catalog
from .code_tables import HcpcsTable, Icd10Table, NdcCrosswalk, packaged_icd10_code_list
from .layers import Merged, check_overrides, merge_keyed_tables, read_settings
from .reference import (
    DrugCatalog,
    Modifier,
    PayerPolicies,
    PayerPolicy,
    load_drugs,
    load_modifiers,
    load_payers,
)

RULES_ENV = "SCRUBBER_RULES"  # site rule directories for the watcher and pipelines (os.pathsep-separated)

_TABLE_SPEC = {
    "file": ("str", False),
    "version": ("str", True),
    "valid_from": ("date", False),
    "valid_through": ("date", True),
    "terminations_listed_from": ("date", False),
    "icd10_from": ("date", False),
    "unclassified_drug_codes": ("list[hcpcs]", False),
    "drug_code_prefixes": ("list[str]", False),
    "facility_places_of_service": ("table", False),
    "source": ("str", True),
}
_TABLE_NEEDS = {
    "hcpcs": ("file", "terminations_listed_from", "unclassified_drug_codes", "drug_code_prefixes"),
    "ndc_crosswalk": ("file", "valid_from"),
    "icd10cm": ("valid_from", "icd10_from"),
}
_SETTINGS_SPEC = {
    "disabled": ("list[rule-id]", False),
    "enabled": ("list[rule-id]", False),
    "severity": ("table", False),
    # The site is a 340B covered entity: Medicare drug lines without TB are then a warning (M009).
    "covered_entity_340b": ("bool", False),
}
# These syntax rules keep the corrected file valid X12: they cannot be turned off or made warnings.
_LOCKED = ("S001", "S002", "S003")


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


def site_layers_from_env() -> list[Path]:
    value = os.environ.get(RULES_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def _table_name(path: Path, name: str) -> None:
    if name not in _TABLE_NEEDS:
        raise RuleDataError(str(path), name, f"one of the code tables: {', '.join(_TABLE_NEEDS)}")


class RuleSet:
    """The catalog, the reference data and the code tables. Code tables load on first use."""

    def __init__(self, directory: Path, site_layers: list[Path] | tuple[Path, ...] = ()) -> None:
        self.directory = directory
        self.layers = [directory, *site_layers]
        for layer in site_layers:
            if not layer.is_dir():
                raise RuleDataError(str(layer), "(directory)", "an existing directory of rule files")
            if (layer / "catalog.toml").exists():
                raise RuleDataError(str(layer / "catalog.toml"), "(file)",
                                    "no catalog in a site layer: change severities in settings.toml or a payer policy")
        self.catalog: dict[str, Rule] = load_catalog(directory / "catalog.toml")
        self.drugs: DrugCatalog = load_drugs(self.layers)
        self.modifiers: dict[str, Modifier]
        self.modifiers, self.modifiers_merged = load_modifiers(self.layers)
        self.payers: PayerPolicies = load_payers(self.layers)
        self.settings, self.settings_sources = read_settings(self.layers, _SETTINGS_SPEC, set(self.catalog), _LOCKED)
        for policy in self.payers.policies:
            where = self.payers.merged.source_of(policy.name, "source")
            check_overrides(where, dict(policy.severity), list(policy.disabled), set(self.catalog), _LOCKED)
        self.tables: Merged = merge_keyed_tables(self.layers, "code_tables.toml", _TABLE_SPEC, key_check=_table_name)
        for name, needs in _TABLE_NEEDS.items():
            entry = self.tables.entries.get(name)
            if entry is None:
                raise RuleDataError(str(directory / "code_tables.toml"), name, "the table's description")
            for key in needs:
                if key not in entry:
                    where = str(self.tables.source_of(name, "version"))
                    raise RuleDataError(where, f"{name}.{key}", "a value (required)")
        self._icd10_override: Path | None = None
        cms_data.settings(self.layers)  # rules/drug_data.toml: a bad value is refused now, not mid-scrub
        cms_data.check_site_stores()  # likewise a $SCRUBBER_DATA store that is missing or unreadable

    # -- what a rule does for a claim ----------------------------------------------------

    def rule(self, rule_id: str) -> Rule:
        return self.catalog[rule_id]

    def rule_state(self, rule_id: str, policy: PayerPolicy) -> tuple[bool, str]:
        """Whether the rule runs for a claim under `policy`, and at what severity."""
        if rule_id in policy.disabled or rule_id in self.settings["disabled"]:
            return False, self.catalog[rule_id].severity
        severity = dict(policy.severity).get(rule_id) or self.settings["severity"].get(rule_id)
        return True, severity or self.catalog[rule_id].severity

    @property
    def covered_entity_340b(self) -> bool:
        return bool(self.settings.get("covered_entity_340b", False))

    def policy_for(self, payer_class: str | None, payer_id: str | None) -> PayerPolicy:
        return self.payers.for_claim(payer_class, payer_id)

    # -- code tables --------------------------------------------------------------------

    def use_icd10_code_file(self, path: Path, version: str, valid_from: dt.date, valid_through: dt.date) -> None:
        """Read ICD-10-CM codes from a (newer) CMS code file instead of the packaged list."""
        if not path.is_file():
            raise RuleDataError(str(path), "(file)", "a readable ICD-10-CM code file")
        self._icd10_override = path
        entry = self.tables.entries["icd10cm"]
        entry.update(version=version, valid_from=valid_from, valid_through=valid_through)
        for key in ("version", "valid_from", "valid_through"):
            self.tables.sources[("icd10cm", key)] = path
        self.__dict__.pop("icd10", None)

    def _meta(self, name: str) -> dict[str, Any]:
        return self.tables.entries[name]

    def _file(self, name: str) -> Path:
        # A table's file is relative to the layer that named it.
        layer = self.tables.source_of(name, "file").parent
        path = layer / self._meta(name)["file"]
        if not path.is_file():
            raise RuleDataError(str(layer / "code_tables.toml"), f"{name}.file", f"an existing file ({path})")
        return path

    @functools.cached_property
    def hcpcs(self) -> HcpcsTable:
        meta = self._meta("hcpcs")
        return HcpcsTable(self._file("hcpcs"), meta["version"], meta["terminations_listed_from"],
                          meta["valid_through"], frozenset(meta["unclassified_drug_codes"]))

    @functools.cached_property
    def ndc_crosswalk(self) -> NdcCrosswalk:
        return NdcCrosswalk(self._file("ndc_crosswalk"), self._meta("ndc_crosswalk")["version"])

    @functools.cached_property
    def icd10(self) -> Icd10Table:
        meta = self._meta("icd10cm")
        if self._icd10_override is not None:
            path = self._icd10_override
        else:
            path = self._file("icd10cm") if "file" in meta else packaged_icd10_code_list()
        return Icd10Table.from_code_list(path, meta["version"], meta["valid_from"], meta["valid_through"])

    # (Cached: asked for every drug line and every claim; the rule set's tables do not change once loaded.)
    @functools.cached_property
    def drug_code_prefixes(self) -> tuple[str, ...]:
        return tuple(self._meta("hcpcs")["drug_code_prefixes"])

    @functools.cached_property
    def facility_places_of_service(self) -> dict[str, str]:
        """Places of service (837P CLM05-01) where a drug is the facility's: code -> name. (Shared:
        read it, do not change it.)"""
        return dict(self._meta("hcpcs").get("facility_places_of_service", {}))

    @property
    def icd10_from(self) -> dt.date:
        return self._meta("icd10cm")["icd10_from"]

    def table_versions(self) -> dict[str, str]:
        return {name: meta["version"] for name, meta in self.tables.entries.items()}


def load_rules(site_layers: list[Path] | tuple[Path, ...] = (), *, use_env: bool = False) -> RuleSet:
    """Load and check the built-in rules, with site rule directories on top (later ones win).
    With `use_env`, the directories in $SCRUBBER_RULES come first among the site layers."""
    layers = [*(site_layers_from_env() if use_env else []), *site_layers]
    return RuleSet(builtin_rules_dir(), layers)
