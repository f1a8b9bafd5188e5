"""Compare the hot-path benchmarks of several commits: alternating runs, medians, differences.

Usage: python -m bench.compare REV [REV ...] [--runs 3]

Each revision is exported (``git archive``) into a temporary directory, and each run executes
that revision's own benchmark code against that revision's own server (``PYTHONPATH`` points
at the export), so a benchmark whose seeding changed with the storage format still measures
its own commit. Runs alternate (A, B, A, B, ...) so that drift of the machine during the
sitting spreads over every revision. For each benchmark the ratio to its same-run baseline is
collected, and the median per revision is compared with the first revision's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

# Runs inside the exported revision: its own bench modules, its own server.
_CHILD = """
import json
from bench import enrollments, query, registrations
from bench.__main__ import _with_server
out = {
    "registrations": _with_server(lambda s: registrations.run(s, devices=3000, concurrency=64)),
    "enrollments": _with_server(lambda s: enrollments.run(s, clients=8, batches=500)),
    "query": _with_server(lambda s: query.run(s, count=1_000_000)),
}
print("RESULT " + json.dumps(out))
"""

BENCHMARKS = ("registrations", "enrollments", "query")


def _export(rev: str, root: Path) -> Path:
    sha = subprocess.run(["git", "rev-parse", rev], capture_output=True, text=True, check=True).stdout.strip()
    target = root / sha[:12]
    if not target.exists():
        archive = subprocess.run(["git", "archive", sha], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def _run(tree: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PYTHONPATH"] = f"{tree / 'src'}{os.pathsep}{tree}"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    out: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return {name: out[name]["measured"]["rate"] / out[name]["baseline"]["rate"] for name in BENCHMARKS}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare")
    parser.add_argument("revs", nargs="+", help="commits to compare; the first is the reference")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    trees = [_export(rev, root) for rev in args.revs]
    ratios: dict[str, dict[str, list[float]]] = {rev: {b: [] for b in BENCHMARKS} for rev in args.revs}
    for run in range(args.runs):
        for rev, tree in zip(args.revs, trees, strict=True):
            result = _run(tree)
            for name, ratio in result.items():
                ratios[rev][name].append(ratio)
            print(f"run {run + 1} {rev}: " + ", ".join(f"{n} {r:.3f}" for n, r in result.items()), flush=True)
    reference = args.revs[0]
    summary: dict[str, Any] = {"runs": args.runs, "medians": {}, "difference_vs_first": {}}
    for rev in args.revs:
        medians = {name: statistics.median(values) for name, values in ratios[rev].items()}
        summary["medians"][rev] = medians
        summary["difference_vs_first"][rev] = {
            name: medians[name] / statistics.median(ratios[reference][name]) - 1 for name in BENCHMARKS
        }
    summary["ratios"] = ratios
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
