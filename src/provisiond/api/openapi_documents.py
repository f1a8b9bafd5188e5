"""Every dialect's OpenAPI document, and ``make openapi``, which writes them to docs/openapi/.

``python -m provisiond.api.openapi_documents DIR`` writes one ``{name}.json`` per dialect that
describes itself; ``--check`` writes nothing and fails when a file differs from the code (the
test suite runs the same comparison, so a change of wire cannot land without its document).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from provisiond.api.dialects import DIALECTS
from provisiond.api.openapi import DialectDocument

__all__ = ["documents", "main", "rendered"]


def documents() -> list[DialectDocument]:
    """The documents of every registered dialect that has one, in registration order."""
    return [d.document for d in DIALECTS if d.document is not None]


def rendered(doc: DialectDocument) -> str:
    """The file's text: stable key order, indented, so that diffs of the docs read well."""
    built: dict[str, Any] = doc.build()
    return json.dumps(built, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for doc in documents():
        target = args.directory / f"{doc.name}.json"
        text = rendered(doc)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target} ({len(doc.build()['paths'])} paths)")
    if stale:
        print("out of date (run make openapi): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
