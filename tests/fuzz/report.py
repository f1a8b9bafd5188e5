"""``make fuzz``'s summary: the cases each dialect was sent, added up over the test processes."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main(path: str) -> int:
    totals: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        totals[row["dialect"]] += int(row["cases"])
        statuses.setdefault(row["dialect"], Counter()).update(row.get("statuses", {}))
    for dialect, cases in sorted(totals.items()):
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(statuses[dialect].items()))
        print(f"{dialect:<12} {cases:>7} cases   ({answers})")
    print(f"{'total':<12} {sum(totals.values()):>7} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
