"""Rule data in layers: the built-in rules first, then each site directory on top.

A later layer adds entries or changes single keys of earlier ones; every merged value remembers
the file it came from, so `scrubber rules show-config` can say where each value was set. Each
layer's file is checked as it is read, with its own path in the message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RuleDataError
from .schema import Spec, check_table, read_toml


@dataclass
class Merged:
    """Entries by identity (a drug's name, a payer's name, a modifier's code), each a dict of
    keys, and for every (identity, key) the file that set it."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)

    def source_of(self, identity: str, key: str) -> Path:
        return self.sources[(identity, key)]


def _layer_files(layers: list[Path], filename: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each layer's `filename` that exists, read."""
    for directory in layers:
        path = directory / filename
        if path.is_file():
            yield path, read_toml(path)


def merge_keyed_array(layers: list[Path], filename: str, array: str, identity: str, spec: Spec) -> Merged:
    """Merge `[[array]]` tables across layers, matched on their `identity` key."""
    merged = Merged()
    for path, data in _layer_files(layers, filename):
        check_table(path, "", data, {array: ("list[table]", True)})
        for i, table in enumerate(data[array]):
            where = f"{array}[{i}]"
            if not isinstance(table, dict) or not isinstance(table.get(identity), str):
                raise RuleDataError(str(path), f"{where}.{identity}", "a name that says which entry this is")
            name = table[identity]
            _merge_entry(merged, path, where, name, table, spec, identity)
    return merged


def merge_keyed_tables(layers: list[Path], filename: str, spec: Spec, *, key_check: Any = None) -> Merged:
    """Merge top-level `[name]` tables across layers (modifiers by code, code tables by name)."""
    merged = Merged()
    for path, data in _layer_files(layers, filename):
        for name, table in data.items():
            if key_check is not None:
                key_check(path, name)
            _merge_entry(merged, path, name, name, table, spec)
    return merged


def _merge_entry(merged: Merged, path: Path, where: str, name: str, table: Any, spec: Spec,
                 identity: str | None = None) -> None:
    # A new entry must be whole; a change to an earlier layer's entry may name only what changes.
    known = name in merged.entries
    check_table(path, where, table, spec, partial=known)
    entry = merged.entries.setdefault(name, {})
    for key, value in table.items():
        if known and key == identity:
            continue  # the name only says which entry changes; it stays where it was set
        entry[key] = value
        merged.sources[(name, key)] = path


def read_settings(layers: list[Path], spec: Spec, rule_ids: set[str], locked: tuple[str, ...]
                  ) -> tuple[dict[str, Any], dict[str, Path]]:
    """settings.toml of each layer: `disabled` and `enabled` lists accumulate, `severity` merges."""
    disabled: set[str] = set()
    severity: dict[str, str] = {}
    facts: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    for path, data in _layer_files(layers, "settings.toml"):
        check_table(path, "", data, spec)
        check_overrides(path, data.get("severity", {}), data.get("disabled", []), rule_ids, locked)
        for rule_id in data.get("disabled", []):
            disabled.add(rule_id)
            sources[f"disabled.{rule_id}"] = path
        for rule_id in data.get("enabled", []):
            disabled.discard(rule_id)
            sources[f"disabled.{rule_id}"] = path
        for rule_id, level in data.get("severity", {}).items():
            severity[rule_id] = level
            sources[f"severity.{rule_id}"] = path
        # Plain site facts (e.g. covered_entity_340b): the last layer that sets one wins.
        for key, value in data.items():
            if key not in ("disabled", "enabled", "severity"):
                facts[key] = value
                sources[key] = path
    return {"disabled": sorted(disabled), "severity": severity, **facts}, sources


def describe_layer(path: Path, builtin: Path) -> str:
    """A file as a user should read it in show-config: built-in files by name only."""
    try:
        return f"built-in {path.relative_to(builtin)}"
    except ValueError:
        return str(path)


def check_overrides(path: Path | str, severity: Mapping[str, Any], disabled: list[str], rule_ids: set[str],
                    locked: tuple[str, ...]) -> None:
    """Severity changes and rules turned off name catalog rules, and leave the locked ones alone."""
    for rule_id, level in severity.items():
        if rule_id not in rule_ids or level not in ("error", "warning"):
            expected = 'a rule id from the catalog set to "error" or "warning"'
            raise RuleDataError(str(path), f"severity.{rule_id}", expected)
    for rule_id in disabled:
        if rule_id not in rule_ids:
            raise RuleDataError(str(path), f"disabled: {rule_id}", "the id of a rule in the catalog")
    for rule_id in [*severity, *disabled]:
        if rule_id in locked:
            expected = "a rule that may change: S001-S003 keep the corrected file valid X12"
            raise RuleDataError(str(path), rule_id, expected)


# The files a site layer may hold; catalog.toml is the built-in layer's alone.
LAYER_FILES = ("payers.toml", "drugs.toml", "modifiers.toml", "settings.toml", "code_tables.toml", "drug_data.toml")


def layer_files(directory: Path) -> list[Path]:
    """The rule files of a site layer, in a fixed order. A .toml file the loader would pass over in
    silence (`payer.toml`) is refused, with the name it most likely meant, so a misnamed file never
    looks like a layer that loaded."""
    for path in sorted(directory.glob("*.toml")):
        if path.name not in LAYER_FILES and path.name != "catalog.toml":  # the loader refuses a catalog itself
            close = difflib.get_close_matches(path.name, LAYER_FILES, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise RuleDataError(str(path), "(file)", f"a file a rule layer holds ({hint}a layer reads "
                                                     f"{', '.join(LAYER_FILES)}; any other .toml is a mistake)")
    return [directory / name for name in LAYER_FILES if (directory / name).is_file()]
