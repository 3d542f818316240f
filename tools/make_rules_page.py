"""Write docs/rules.md, the reference page of every rule, from the catalog.

    python tools/make_rules_page.py

tests/test_catalog.py fails when the page and the catalog disagree.
"""

from __future__ import annotations

from pathlib import Path

from scrubber.output.ruledocs import reference_page
from scrubber.rules.ruleset import load_rules

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"

if __name__ == "__main__":
    PAGE.write_text(reference_page(load_rules()), encoding="utf-8")
    print(f"wrote {PAGE}")
