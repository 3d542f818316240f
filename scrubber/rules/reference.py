"""Reference data from rules/: drug profiles, modifiers and payer policies, checked as loaded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..errors import RuleDataError
from .schema import check_dates, check_table, read_toml

# -- drugs ------------------------------------------------------------------------------------

_DRUG_SPEC = {
    "name": ("str", True),
    "brand": ("str", True),
    "route": ("list[str]", True),
    "single_dose": ("bool", True),
    "indication": ("str", True),
    "indication_codes": ("list[icd10-prefix]", True),
    "indication_source": ("str", True),
    "plausible_units_per_day": ("int", False),
    "plausible_units_basis": ("str", False),
    "code": ("list[table]", True),
    "product": ("list[table]", False),
}
_CODE_SPEC = {
    "hcpcs": ("hcpcs", True),
    "descriptor": ("str", True),
    "billing_unit_mg": ("decimal", True),
    "valid_from": ("date", True),
    "valid_to": ("date", False),
    "replaced_by": ("hcpcs", False),
    "institutional_revenue_code": ("str", False),
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
    replaced_by: str | None
    institutional_revenue_code: str | None
    source: str

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    @property
    def billing_unit(self) -> str:
        return f"{self.billing_unit_mg.normalize():f} mg"


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
    brand: str
    route: tuple[str, ...]
    single_dose: bool
    indication: str
    indication_codes: tuple[str, ...]  # ICD-10-CM prefixes without dots
    indication_source: str
    plausible_units_per_day: int | None
    plausible_units_basis: str | None
    codes: tuple[DrugCode, ...]
    products: tuple[DrugProduct, ...]

    def is_indicated_for(self, icd10: str) -> bool:
        return any(icd10.startswith(prefix) for prefix in self.indication_codes)

    @property
    def indication_list(self) -> str:
        return ", ".join(f"{p[:3]}.{p[3:]}*" if len(p) > 3 else f"{p}*" for p in self.indication_codes)

    @property
    def hcpcs_codes(self) -> tuple[str, ...]:
        return tuple(c.hcpcs for c in self.codes)

    def vial_sizes(self) -> tuple[Decimal, ...]:
        """The verified vial sizes of the drug's products."""
        return tuple(sorted({p.vial_mg for p in self.products if p.vial_mg is not None and p.vial_verified}))


class DrugCatalog:
    def __init__(self, drugs: list[Drug]) -> None:
        self.drugs = drugs
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


def load_drugs(path: Path) -> DrugCatalog:
    data = read_toml(path)
    check_table(path, "", data, {"drug": ("list[table]", True)})
    drugs = []
    for i, table in enumerate(data["drug"]):
        where = f"drug[{i}]"
        check_table(path, where, table, _DRUG_SPEC)
        codes = []
        for j, code in enumerate(table["code"]):
            check_table(path, f"{where}.code[{j}]", code, _CODE_SPEC)
            check_dates(path, f"{where}.code[{j}]", code, "valid_from", "valid_to")
            codes.append(
                DrugCode(
                    hcpcs=code["hcpcs"],
                    descriptor=code["descriptor"],
                    billing_unit_mg=Decimal(code["billing_unit_mg"]),
                    valid_from=code["valid_from"],
                    valid_to=code.get("valid_to"),
                    replaced_by=code.get("replaced_by"),
                    institutional_revenue_code=code.get("institutional_revenue_code"),
                    source=code["source"],
                )
            )
        products = []
        for j, product in enumerate(table.get("product", [])):
            check_table(path, f"{where}.product[{j}]", product, _PRODUCT_SPEC)
            vial = product.get("vial_mg")
            products.append(
                DrugProduct(
                    ndc=product["ndc"].replace("-", ""),
                    labeler=product["labeler"],
                    vial_mg=Decimal(vial) if vial else None,
                    billing_units_per_package=product.get("billing_units_per_package"),
                    verified=product["verified"],
                    vial_verified=product.get("vial_verified", True),
                    source=product["source"],
                )
            )
        drugs.append(
            Drug(
                name=table["name"],
                brand=table["brand"],
                route=tuple(table["route"]),
                single_dose=table["single_dose"],
                indication=table["indication"],
                indication_codes=tuple(c.replace(".", "") for c in table["indication_codes"]),
                indication_source=table["indication_source"],
                plausible_units_per_day=table.get("plausible_units_per_day"),
                plausible_units_basis=table.get("plausible_units_basis"),
                codes=tuple(codes),
                products=tuple(products),
            )
        )
    return DrugCatalog(drugs)


# -- modifiers ---------------------------------------------------------------------------------

_MODIFIER_SPEC = {
    "meaning": ("str", True),
    "kind": ("str", True),
    "route": ("str", False),
    "valid_from": ("date", False),
    "source": ("str", True),
}


@dataclass(frozen=True, slots=True)
class Modifier:
    code: str
    meaning: str
    kind: str  # discard, route
    route: str | None
    valid_from: dt.date | None
    source: str


def load_modifiers(path: Path) -> dict[str, Modifier]:
    data = read_toml(path)
    modifiers = {}
    for code, table in data.items():
        if len(code) != 2 or not code.isalnum():
            raise RuleDataError(str(path), code, "a two-character HCPCS modifier")
        check_table(path, code, table, _MODIFIER_SPEC)
        if table["kind"] not in ("discard", "route"):
            raise RuleDataError(str(path), f"{code}.kind", "discard or route")
        modifiers[code] = Modifier(code, table["meaning"], table["kind"], table.get("route"),
                                   table.get("valid_from"), table["source"])
    return modifiers


# -- payers ------------------------------------------------------------------------------------

_PAYER_SPEC = {
    "name": ("str", True),
    "classes": ("list[str]", True),
    "jw_jz_required_from": ("date", False),
    "ndc_required": ("bool", False),
    "prior_auth_codes": ("list[hcpcs]", False),
    "source": ("str", True),
}


@dataclass(frozen=True, slots=True)
class PayerPolicy:
    name: str
    classes: tuple[str, ...]
    jw_jz_required_from: dt.date | None
    ndc_required: bool
    prior_auth_codes: tuple[str, ...]
    source: str


class PayerPolicies:
    def __init__(self, policies: list[PayerPolicy]) -> None:
        self.policies = policies
        self._by_class = {c: p for p in policies for c in p.classes}

    def for_class(self, payer_class: str | None) -> PayerPolicy | None:
        return self._by_class.get(payer_class or "")


def load_payers(path: Path) -> PayerPolicies:
    data = read_toml(path)
    check_table(path, "", data, {"payer": ("list[table]", True)})
    policies = []
    seen: dict[str, str] = {}
    for i, table in enumerate(data["payer"]):
        where = f"payer[{i}]"
        check_table(path, where, table, _PAYER_SPEC)
        for payer_class in table["classes"]:
            if payer_class in seen:
                expected = f"classes not already given to {seen[payer_class]!r} ({payer_class})"
                raise RuleDataError(str(path), f"{where}.classes", expected)
            seen[payer_class] = table["name"]
        policies.append(
            PayerPolicy(
                name=table["name"],
                classes=tuple(table["classes"]),
                jw_jz_required_from=table.get("jw_jz_required_from"),
                ndc_required=table.get("ndc_required", False),
                prior_auth_codes=tuple(table.get("prior_auth_codes", ())),
                source=table["source"],
            )
        )
    return PayerPolicies(policies)
