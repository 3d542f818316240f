"""Reference data from rules/: drug profiles, modifiers and payer policies, checked as loaded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import RuleDataError
from .layers import Merged, merge_keyed_array, merge_keyed_tables
from .schema import check_dates, check_table

# -- drugs ------------------------------------------------------------------------------------

_DRUG_SPEC = {
    "name": ("str", True),
    "brand": ("str", False),
    "route": ("list[str]", False),
    "single_dose": ("bool", False),
    "single_dose_source": ("str", False),
    "indication": ("str", False),
    "indication_codes": ("list[icd10-prefix]", False),
    "indication_source": ("str", False),
    "plausible_units_per_day": ("int", False),
    "plausible_units_basis": ("str", False),
    "cycle_days": ("int", False),
    "administration_days_per_cycle": ("int", False),
    "cycle_source": ("str", False),
    "confused_with": ("str", False),
    "no_established_code_from": ("date", False),
    "no_established_code_source": ("str", False),
    "notes": ("str", False),
    "code": ("list[table]", True),
    "product": ("list[table]", False),
}
_CODE_SPEC = {
    "hcpcs": ("hcpcs", True),
    "descriptor": ("str", True),
    "billing_unit_mg": ("decimal", True),
    "valid_from": ("date", True),
    "valid_to": ("date", False),
    "replaced_by": ("list[hcpcs]", False),
    "institutional_revenue_code": ("str", False),
    "packaged_from": ("date", False),
    "packaged_source": ("str", False),
    "source": ("str", True),
}
_PRODUCT_SPEC = {
    "ndc": ("ndc", True),
    "labeler": ("str", True),
    "vial_mg": ("decimal", False),
    "billing_units_per_package": ("int", False),
    "verified": ("bool", True),
    "package_verified": ("bool", False),
    "vial_verified": ("bool", False),
    "source": ("str", True),
}


@dataclass(frozen=True, slots=True)
class DrugCode:
    hcpcs: str
    descriptor: str
    billing_unit_mg: Decimal
    valid_from: dt.date
    valid_to: dt.date | None
    replaced_by: tuple[str, ...]
    institutional_revenue_code: str | None
    source: str
    # From this date the code is packaged under OPPS (status indicator N): not separately
    # payable, so JW/JZ and the 340B modifiers do not apply to it.
    packaged_from: dt.date | None = None

    def packaged_on(self, day: dt.date | None) -> bool:
        return self.packaged_from is not None and day is not None and day >= self.packaged_from

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    @property
    def billing_unit(self) -> str:
        return f"{self.billing_unit_mg.normalize():f} mg"

    @property
    def dates(self) -> str:
        return f"{self.valid_from} to {self.valid_to}" if self.valid_to else f"from {self.valid_from}"


@dataclass(frozen=True, slots=True)
class DrugProduct:
    ndc: str  # 11 digits, no hyphens
    labeler: str
    vial_mg: Decimal | None
    billing_units_per_package: int | None
    verified: bool
    vial_verified: bool
    source: str

    @property
    def product_key(self) -> str:
        return self.ndc[:9]


@dataclass(frozen=True, slots=True)
class Drug:
    name: str
    brand: str | None
    route: tuple[str, ...]
    single_dose: bool
    indication: str | None
    indication_codes: tuple[str, ...]  # ICD-10-CM prefixes without dots
    indication_source: str | None
    plausible_units_per_day: int | None
    plausible_units_basis: str | None
    cycle_days: int | None
    administration_days_per_cycle: int | None
    confused_with: str | None
    no_established_code_from: dt.date | None
    codes: tuple[DrugCode, ...]
    products: tuple[DrugProduct, ...]
    single_dose_known: bool = False  # single_dose stated in drugs.toml (not just the default)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.brand})" if self.brand else self.name

    def is_indicated_for(self, icd10: str, extra: tuple[str, ...] = ()) -> bool:
        return icd10.startswith(self.indication_prefixes(extra))  # (False for no prefix at all)

    def indication_prefixes(self, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The ICD-10-CM prefixes a diagnosis of the drug's indication starts with (and `extra`'s):
        made once for a line whose every diagnosis is tested against them."""
        return self.indication_codes + extra

    @property
    def indication_list(self) -> str:
        return ", ".join(f"{p[:3]}.{p[3:]}*" if len(p) > 3 else f"{p}*" for p in self.indication_codes)

    @property
    def hcpcs_codes(self) -> tuple[str, ...]:
        return tuple(c.hcpcs for c in self.codes)

    def code_on(self, day: dt.date) -> DrugCode | None:
        return next((c for c in self.codes if c.valid_on(day)), None)

    def vial_sizes(self) -> tuple[Decimal, ...]:
        """The verified vial sizes of the drug's products (found once a drug: the vial checks ask
        for every drug line)."""
        found = _VIAL_SIZES.get(id(self))
        if found is None or found[0] is not self:
            if len(_VIAL_SIZES) >= 4096:
                _VIAL_SIZES.clear()  # rule sets loaded again and again (a long watcher): bounded
            sizes = tuple(sorted({p.vial_mg for p in self.products if p.vial_mg is not None and p.vial_verified}))
            found = _VIAL_SIZES[id(self)] = (self, sizes)
        return found[1]


# Drug.vial_sizes, by drug (the drug is kept with its sizes, so its id is not reused meanwhile).
_VIAL_SIZES: dict[int, tuple[Drug, tuple[Decimal, ...]]] = {}


class DrugCatalog:
    def __init__(self, drugs: list[Drug], merged: Merged | None = None) -> None:
        self.drugs = drugs
        self.merged = merged or Merged()
        self._by_name = {d.name: d for d in drugs}
        self._by_code: dict[str, tuple[Drug, DrugCode]] = {}
        self._by_product: dict[str, tuple[Drug, DrugProduct]] = {}
        for drug in drugs:
            for code in drug.codes:
                self._by_code[code.hcpcs] = (drug, code)
            for product in drug.products:
                self._by_product[product.product_key] = (drug, product)

    def by_code(self, hcpcs: str) -> tuple[Drug, DrugCode] | None:
        return self._by_code.get(hcpcs)

    def by_ndc(self, ndc11: str) -> tuple[Drug, DrugProduct] | None:
        return self._by_product.get(ndc11[:9])

    def by_name(self, name: str) -> Drug | None:
        return self._by_name.get(name)


def load_drugs(layers: list[Path]) -> DrugCatalog:
    merged = merge_keyed_array(layers, "drugs.toml", "drug", "name", _DRUG_SPEC)
    drugs = []
    seen_codes: dict[str, str] = {}
    for name, table in merged.entries.items():
        path = merged.source_of(name, "code")
        codes = tuple(_drug_code(path, name, j, code) for j, code in enumerate(table["code"]))
        for code in codes:
            if code.hcpcs in seen_codes:
                expected = f"codes not already given to {seen_codes[code.hcpcs]!r} ({code.hcpcs})"
                raise RuleDataError(str(path), f"drug {name!r}.code", expected)
            seen_codes[code.hcpcs] = name
        products_path = merged.sources.get((name, "product"), path)
        products = tuple(_drug_product(products_path, name, j, p) for j, p in enumerate(table.get("product", [])))
        drugs.append(
            Drug(
                name=name,
                brand=table.get("brand"),
                route=tuple(table.get("route", ())),
                single_dose=table.get("single_dose", False),
                indication=table.get("indication"),
                indication_codes=tuple(c.replace(".", "") for c in table.get("indication_codes", ())),
                indication_source=table.get("indication_source"),
                plausible_units_per_day=table.get("plausible_units_per_day"),
                plausible_units_basis=table.get("plausible_units_basis"),
                cycle_days=table.get("cycle_days"),
                administration_days_per_cycle=table.get("administration_days_per_cycle"),
                confused_with=table.get("confused_with"),
                no_established_code_from=table.get("no_established_code_from"),
                codes=codes,
                products=products,
                single_dose_known="single_dose" in table,
            )
        )
    catalog = DrugCatalog(drugs, merged)
    for drug in drugs:
        if drug.confused_with and catalog.by_name(drug.confused_with) is None:
            raise RuleDataError(str(merged.source_of(drug.name, "confused_with")), f"drug {drug.name!r}.confused_with",
                                "the name of another drug in drugs.toml")
    return catalog


def _drug_code(path: Path, name: str, j: int, code: Any) -> DrugCode:
    where = f"drug {name!r}.code[{j}]"
    check_table(path, where, code, _CODE_SPEC)
    check_dates(path, where, code, "valid_from", "valid_to")
    return DrugCode(
        hcpcs=code["hcpcs"],
        descriptor=code["descriptor"],
        billing_unit_mg=Decimal(code["billing_unit_mg"]),
        valid_from=code["valid_from"],
        valid_to=code.get("valid_to"),
        replaced_by=tuple(code.get("replaced_by", ())),
        institutional_revenue_code=code.get("institutional_revenue_code"),
        source=code["source"],
        packaged_from=code.get("packaged_from"),
    )


def _drug_product(path: Path, name: str, j: int, product: Any) -> DrugProduct:
    check_table(path, f"drug {name!r}.product[{j}]", product, _PRODUCT_SPEC)
    vial = product.get("vial_mg")
    return DrugProduct(
        ndc=product["ndc"].replace("-", ""),
        labeler=product["labeler"],
        vial_mg=Decimal(vial) if vial else None,
        billing_units_per_package=product.get("billing_units_per_package"),
        verified=product["verified"],
        vial_verified=product.get("vial_verified", True),
        source=product["source"],
    )


# -- modifiers ---------------------------------------------------------------------------------

_MODIFIER_SPEC = {
    "meaning": ("str", True),
    "kind": ("str", True),
    "route": ("str", False),
    "valid_from": ("date", False),
    "valid_to": ("date", False),
    "replaced_by": ("str", False),
    "claim_types": ("list[str]", False),
    "source": ("str", True),
}
_MODIFIER_KINDS = ("discard", "route", "policy", "340b")


@dataclass(frozen=True, slots=True)
class Modifier:
    code: str
    meaning: str
    kind: str  # discard, route, policy, 340b
    route: str | None
    valid_from: dt.date | None
    source: str
    valid_to: dt.date | None = None  # terminated after this date (JG: 2024-12-31)
    replaced_by: str | None = None  # what to report instead after valid_to

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (self.valid_to is None or day <= self.valid_to)

    @property
    def dates(self) -> str:
        if self.valid_from and self.valid_to:
            return f"from {self.valid_from} to {self.valid_to}"
        return f"from {self.valid_from}" if self.valid_from else f"until {self.valid_to}"


def _modifier_code(path: Path, code: str) -> None:
    if len(code) != 2 or not code.isalnum():
        raise RuleDataError(str(path), code, "a two-character HCPCS modifier")


def load_modifiers(layers: list[Path]) -> tuple[dict[str, Modifier], Merged]:
    merged = merge_keyed_tables(layers, "modifiers.toml", _MODIFIER_SPEC, key_check=_modifier_code)
    modifiers = {}
    for code, table in merged.entries.items():
        if table["kind"] not in _MODIFIER_KINDS:
            expected = f"one of {', '.join(_MODIFIER_KINDS)}"
            raise RuleDataError(str(merged.source_of(code, "kind")), f"{code}.kind", expected)
        check_dates(merged.source_of(code, "kind"), code, table, "valid_from", "valid_to")
        modifiers[code] = Modifier(code, table["meaning"], table["kind"], table.get("route"),
                                   table.get("valid_from"), table["source"], table.get("valid_to"),
                                   table.get("replaced_by"))
    return modifiers, merged


# -- payers ------------------------------------------------------------------------------------

_PAYER_SPEC = {
    "name": ("str", True),
    "classes": ("list[str]", False),
    "payer_ids": ("list[str]", False),
    "jw_jz_required_from": ("date", False),
    "ndc_required": ("bool", False),
    "ndc_qualifiers": ("list[str]", False),
    "prior_auth_codes": ("list[hcpcs]", False),
    "kx_required_codes": ("list[hcpcs]", False),
    "quantity_limits": ("list[table]", False),
    "documentation": ("list[table]", False),
    "covered_diagnoses": ("table", False),
    "modifiers_340b": ("bool", False),
    "modifiers_340b_from": ("date", False),
    "jw_jz_bill_types": ("list[str]", False),
    "line_dates_bill_types": ("list[str]", False),
    "max_professional_amount": ("decimal", False),
    "severity": ("table", False),
    "disabled": ("list[rule-id]", False),
    "source": ("str", True),
}
_DOCUMENTATION_SPEC = {"code": ("hcpcs", True), "report_type": ("str", False), "note": ("bool", False),
                       "what": ("str", True), "source": ("str", False)}
_LIMIT_SPEC = {"code": ("hcpcs", True), "units": ("int", True), "days": ("int", True), "source": ("str", False)}


@dataclass(frozen=True, slots=True)
class QuantityLimit:
    code: str
    units: int
    days: int


@dataclass(frozen=True, slots=True)
class Documentation:
    """What a payer wants with a drug: an attachment of a PWK01 report type, or else a note (NTE)."""

    code: str
    report_type: str | None
    what: str


@dataclass(frozen=True, slots=True)
class PayerPolicy:
    """What one payer (or payer class) requires. An empty policy requires nothing."""

    name: str
    classes: tuple[str, ...] = ()
    payer_ids: tuple[str, ...] = ()
    jw_jz_required_from: dt.date | None = None
    ndc_required: bool = False
    ndc_qualifiers: tuple[str, ...] = ()  # LIN02 values the payer reads (N4); empty: what the guide allows
    prior_auth_codes: tuple[str, ...] = ()
    kx_required_codes: tuple[str, ...] = ()
    quantity_limits: tuple[QuantityLimit, ...] = ()
    documentation: tuple[Documentation, ...] = ()
    covered_diagnoses: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (hcpcs, ICD-10 prefixes without dots)
    modifiers_340b: bool = False
    modifiers_340b_from: dt.date | None = None
    # 837I bill types (first two digits) on which JW/JZ are required; the 837P always.
    jw_jz_bill_types: tuple[str, ...] = ()
    line_dates_bill_types: tuple[str, ...] = ()  # 837I bill types whose lines each need DTP*472 (S007)
    max_professional_amount: Decimal | None = None
    severity: tuple[tuple[str, str], ...] = ()
    disabled: tuple[str, ...] = ()
    source: str = ""
    # Set by PayerPolicies.for_claim: the prior authorization list comes from a payer-id policy
    # (the payer's own word, A001), not from a payer class's default (A002).
    prior_auth_by_payer_id: bool = False

    def covered_codes(self, hcpcs: str) -> tuple[str, ...] | None:
        """The diagnoses this payer's policy lists as covered for the code, or None (no list)."""
        if not self.covered_diagnoses:
            return None  # (most payers list none: asked for every drug line)
        return next((codes for code, codes in self.covered_diagnoses if code == hcpcs), None)

    def asks_340b(self, day: dt.date | None) -> bool:
        if not self.modifiers_340b:
            return False
        return self.modifiers_340b_from is None or (day is not None and day >= self.modifiers_340b_from)

    def over(self, base: PayerPolicy) -> PayerPolicy:
        """This (payer id) policy laid over a payer-class policy: what this one sets wins."""
        values = {}
        for name in PayerPolicy.__slots__:  # type: ignore[attr-defined]
            mine, theirs = getattr(self, name), getattr(base, name)
            values[name] = mine if mine not in (None, False, (), "") else theirs
        values["name"] = self.name
        return PayerPolicy(**values)


NO_POLICY = PayerPolicy(name="no payer policy")
_POLICIES_KEPT = 1024  # (payer class, payer id) pairs remembered by PayerPolicies.for_claim


class PayerPolicies:
    def __init__(self, policies: list[PayerPolicy], merged: Merged | None = None) -> None:
        self.policies = policies
        self.merged = merged or Merged()
        self._by_class = {c: p for p in policies for c in p.classes}
        self._by_id = {i: p for p in policies for i in p.payer_ids}
        # Each claim asks twice (its checks, its checks across claims), and a file's claims name
        # the same few payers: a policy laid over another is made once, not twice a claim.
        self._for_claim: dict[tuple[str | None, str | None], PayerPolicy] = {}

    def for_claim(self, payer_class: str | None, payer_id: str | None) -> PayerPolicy:
        """The policy for a claim: by payer id (NM1*PR) first, laid over the payer class's (SBR09)."""
        key = (payer_class, payer_id)
        found = self._for_claim.get(key)
        if found is None:
            if len(self._for_claim) >= _POLICIES_KEPT:
                self._for_claim.clear()  # a file naming thousands of payer ids: memory stays bounded
            found = self._for_claim[key] = self._policy(payer_class, payer_id)
        return found

    def _policy(self, payer_class: str | None, payer_id: str | None) -> PayerPolicy:
        by_class = self._by_class.get(payer_class or "")
        by_id = self._by_id.get(payer_id or "")
        if by_id is not None and by_class is not None and by_id is not by_class:
            policy = by_id.over(by_class)
        else:
            policy = by_id or by_class or NO_POLICY
        own_list = by_id is not None and bool(by_id.prior_auth_codes)
        return replace(policy, prior_auth_by_payer_id=own_list) if own_list else policy


def load_payers(layers: list[Path]) -> PayerPolicies:
    """The payer policies; their severity changes and disabled rules are checked by the rule set,
    which knows the catalog."""
    merged = merge_keyed_array(layers, "payers.toml", "payer", "name", _PAYER_SPEC)
    policies = []
    claimed: dict[tuple[str, str], str] = {}
    for name, table in merged.entries.items():
        def where(key: str, _name: str = name) -> tuple[str, str]:
            return str(merged.sources.get((_name, key), merged.source_of(_name, "name"))), f"payer {_name!r}.{key}"

        if not table.get("classes") and not table.get("payer_ids"):
            raise RuleDataError(*where("classes"), "payer classes (SBR09) or payer ids (NM1*PR) the policy is for")
        for kind in ("classes", "payer_ids"):
            for value in table.get(kind, []):
                if (kind, value) in claimed and claimed[(kind, value)] != name:
                    expected = f"{kind} not already given to {claimed[(kind, value)]!r} ({value})"
                    raise RuleDataError(*where(kind), expected)
                claimed[(kind, value)] = name
        limits = []
        for i, limit in enumerate(table.get("quantity_limits", [])):
            path, key = where("quantity_limits")
            check_table(path, f"{key}[{i}]", limit, _LIMIT_SPEC)
            limits.append(QuantityLimit(limit["code"], limit["units"], limit["days"]))
        documentation = []
        for i, need in enumerate(table.get("documentation", [])):
            path, key = where("documentation")
            check_table(path, f"{key}[{i}]", need, _DOCUMENTATION_SPEC)
            if ("report_type" in need) == bool(need.get("note")):
                raise RuleDataError(path, f"{key}[{i}]", "either report_type (an attachment) or note = true")
            documentation.append(Documentation(need["code"], need.get("report_type"), need["what"]))
        covered = []
        for code, prefixes in table.get("covered_diagnoses", {}).items():
            path, key = where("covered_diagnoses")
            check_table(path, key, {"codes": code, "prefixes": prefixes},
                        {"codes": ("hcpcs", True), "prefixes": ("list[icd10-prefix]", True)})
            covered.append((code, tuple(p.replace(".", "") for p in prefixes)))
        severity = tuple(table.get("severity", {}).items())
        amount = table.get("max_professional_amount")
        policies.append(
            PayerPolicy(
                name=name,
                classes=tuple(table.get("classes", ())),
                payer_ids=tuple(table.get("payer_ids", ())),
                jw_jz_required_from=table.get("jw_jz_required_from"),
                ndc_required=table.get("ndc_required", False),
                ndc_qualifiers=tuple(table.get("ndc_qualifiers", ())),
                prior_auth_codes=tuple(table.get("prior_auth_codes", ())),
                kx_required_codes=tuple(table.get("kx_required_codes", ())),
                quantity_limits=tuple(limits),
                documentation=tuple(documentation),
                covered_diagnoses=tuple(covered),
                modifiers_340b=table.get("modifiers_340b", False),
                modifiers_340b_from=table.get("modifiers_340b_from"),
                jw_jz_bill_types=tuple(table.get("jw_jz_bill_types", ())),
                line_dates_bill_types=tuple(table.get("line_dates_bill_types", ())),
                max_professional_amount=Decimal(amount) if amount else None,
                severity=severity,
                disabled=tuple(table.get("disabled", ())),
                source=table["source"],
            )
        )
    return PayerPolicies(policies, merged)
