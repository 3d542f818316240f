"""Build the reference data store the package ships (scrubber/refdata/cms/) from CMS's files.

    python tools/build_refdata.py [CMS_DIR]

CMS_DIR defaults to ../shared/reference/cms. Every CSV there and in its quarters/ is imported into a
new, empty store, which then replaces the shipped one. Order decides between two releases of one
quarter (the later import wins): the top-level files first, then quarters/, each in name order, so
CMS's exact October 2025 crosswalk (quarters/) wins over the re-encoded copy, Addendum B July 2025
v072525 over v062625, and the MUE drugs excerpt over its J9/C9 subset. The same as
`scrubber data import --from-scratch --data DIR FILE...` with the files in this order.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrubber.refdata import BUILTIN_STORE, add_sources, read_files  # noqa: E402


def cms_files(cms: Path) -> list[Path]:
    return sorted(cms.glob("*.csv")) + sorted((cms / "quarters").glob("*.csv"))


def main(argv: list[str]) -> int:
    cms = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "reference" / "cms"
    files = cms_files(cms)
    if not files:
        print(f"no CMS files in {cms}", file=sys.stderr)
        return 2
    parsed, _ = read_files(files)
    with tempfile.TemporaryDirectory(dir=BUILTIN_STORE.parent) as scratch:
        store = Path(scratch) / "cms"
        for info, replaced in add_sources(store, parsed):
            note = f" (replaces {replaced.source})" if replaced else ""
            print(f"{info.title}, {info.quarter}: {info.rows} rows from {info.source}{note}")
        shutil.rmtree(BUILTIN_STORE, ignore_errors=True)
        store.rename(BUILTIN_STORE)
    size = sum(p.stat().st_size for p in BUILTIN_STORE.iterdir())
    print(f"{BUILTIN_STORE.relative_to(ROOT)}: {len(list(BUILTIN_STORE.iterdir()))} files, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
