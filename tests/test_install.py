"""The installed package carries its rules: it works from any directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SAMPLES

import scrubber
from scrubber.rules.ruleset import builtin_rules_dir


def test_builtin_rules_ship_inside_the_package():
    directory = builtin_rules_dir()
    for name in ("catalog.toml", "drugs.toml", "modifiers.toml", "payers.toml", "code_tables.toml",
                 "code_tables/hcpcs_2025_oct.csv", "code_tables/asp_ndc_hcpcs_2025_oct.csv"):
        assert (directory / name).is_file(), name
    package = Path(scrubber.__file__).resolve().parent
    if ROOT not in package.parents:  # installed with `pip install .`, as .ci/run does
        assert package in directory.resolve().parents


def test_scrubs_from_another_directory(tmp_path):
    shutil.copy(SAMPLES / "clean_837i.837", tmp_path / "in.837")
    done = subprocess.run([sys.executable, "-m", "scrubber", "scrub", "in.837", "--out", "out"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "in.corrected.837").read_bytes() == (tmp_path / "in.837").read_bytes()
    version = subprocess.run([sys.executable, "-m", "scrubber", "--version"], capture_output=True, text=True,
                             cwd=tmp_path)
    assert f"{len(scrubber.load_rules().catalog)} rules" in version.stdout


def test_every_package_folder_is_listed_for_the_wheel():
    """pyproject.toml lists the packages by hand: a new sub-package left out installs fine in
    editable mode (the tests' venv) and breaks a `pip install .` (CI, users). scrubber.x12.guide was."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(path.parent.relative_to(ROOT).parts)
               for path in (ROOT / "scrubber").rglob("*.py")}
    assert folders <= listed, sorted(folders - listed)
