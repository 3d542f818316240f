"""The public surface: scrubber.__all__ is the list, and the library never imports the CLI."""

from __future__ import annotations

import subprocess
import sys

import scrubber


def test_public_names_are_exactly_these():
    assert sorted(scrubber.__all__) == [
        "ClaimFileWriter",
        "ClaimOutcome",
        "FixMode",
        "InputError",
        "JsonReport",
        "Result",
        "RuleDataError",
        "RuleSet",
        "RunContext",
        "ScrubbedClaim",
        "ScrubberError",
        "Sink",
        "Summary",
        "TransactionClosed",
        "load_rules",
        "scrub",
        "scrub_stream",
    ]
    for name in scrubber.__all__:
        assert hasattr(scrubber, name)


def test_the_library_does_not_import_the_cli_or_click():
    code = "import sys, scrubber; print('scrubber.cli' in sys.modules, 'click' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_lower_layers_do_not_import_higher_ones():
    """X12 syntax <- claim model <- rules <- outputs <- CLI."""
    order = ["x12", "model", "rules", "output", "cli"]
    root = scrubber.__path__[0]
    import pathlib

    for path in pathlib.Path(root).rglob("*.py"):
        layer = path.relative_to(root).parts[0].removesuffix(".py")
        if layer not in order:
            continue
        text = path.read_text()
        for higher in order[order.index(layer) + 1 :]:
            assert f"from ..{higher}" not in text and f"from .{higher}" not in text.replace(f"from .{layer}", ""), (
                f"{path} ({layer}) imports {higher}"
            )
