"""`python -m bench.profile BENCHMARK`: where the server spends its time during one benchmark.

Runs the measured phase of a benchmark (at a smaller size, the profile's shape does not need the
full one) against a real `provisiond serve` with py-spy sampling the server process, then
prints self time per package and the functions with the most self and inclusive time. The raw
stacks are kept (``--out``) for a flame graph (e.g. speedscope, inferno). py-spy is not a
project dependency: ``.venv/bin/pip install py-spy`` first. docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench import SERVER_SETTINGS, claims, enrollments, query, registrations
from tests.support.server import ServerProcess, start_server

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _prepare(name: str, server: ServerProcess) -> Callable[[], object]:
    """Loads the data the benchmark needs and returns its measured phase."""
    if name == "registrations":
        registrations.enroll(server, 2000)
        return lambda: asyncio.run(registrations.measure(server, 2000, 64))
    if name == "enrollments":
        return lambda: asyncio.run(enrollments.measure(server, 8, 250))
    if name == "query":
        query.seed(server, 200_000)
        return lambda: asyncio.run(query.page_all(server))
    if name == "claims":
        created = json.loads(server.cli("partner", "create", "bench", "--json").stdout)
        return lambda: asyncio.run(claims.claim(server, created["partnerId"], created["token"], 100_000))
    raise SystemExit(f"unknown benchmark {name!r}")


def _package(path: str) -> str:
    """A frame's file as a package name (py-spy prints paths relative to sys.path)."""
    parts = Path(path).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if parts[0] == "provisiond" and len(parts) > 2:
        return f"provisiond.{parts[1]}"
    if len(parts) > 1:
        return parts[0]
    return Path(path).stem.strip("<>")


def summarize(raw: Path, top: int = 15) -> str:
    """Self time by package and by function, inclusive time by function, from py-spy raw stacks."""
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [m for f in stack.split(";") if (m := _FRAME.match(f.strip()))]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        by_package[_package(leaf["file"])] += count
        self_time[f"{leaf['func']} ({_package(leaf['file'])})"] += count
        for name in {
            f"{m['func']} ({_package(m['file'])})" for m in frames if m["file"].startswith("provisiond/")
        }:
            inclusive[name] += count

    def table(title: str, counts: Counter[str]) -> list[str]:
        return [title] + [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]

    lines = [f"{total} samples (idle excluded)"]
    lines += table("self time by package:", by_package)
    lines += table("self time by function:", self_time)
    # The serve/run-loop frames under every sample say nothing; show provisiond's own frames.
    inclusive = Counter({name: n for name, n in inclusive.items() if n < 0.8 * total})
    lines += table("inclusive time by provisiond function:", inclusive)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("benchmark", choices=["registrations", "enrollments", "query", "claims"])
    parser.add_argument("--out", type=Path, default=None, help="where to keep the raw stacks")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-profile-")), settings=SERVER_SETTINGS)
    raw = args.out or Path(tempfile.mkdtemp(prefix="py-spy-")) / f"{args.benchmark}.txt"
    try:
        measured = _prepare(args.benchmark, server)
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(server.proc.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)  # py-spy attaches
        measured()
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    finally:
        server.stop()
    print(f"raw stacks: {raw}")
    print(summarize(raw))


if __name__ == "__main__":
    main()
