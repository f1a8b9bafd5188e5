"""`make bench` keeps working: every benchmark runs end to end at a tiny size against a real server.

The figures themselves are not asserted (speed belongs to `make bench`, not to tests); what is
asserted is that each benchmark and its baseline ran, saw no errors and measured something, and
that the profile summary reads py-spy's raw stacks correctly.
"""

from __future__ import annotations

from pathlib import Path

from bench import SERVER_SETTINGS, audit_export, claims, enrollments, query, registrations
from bench.__main__ import _table
from bench.profile import summarize

from tests.support.server import start_server


def test_every_benchmark_runs_and_the_table_shows_each_with_its_baseline(tmp_path: Path) -> None:
    out: dict[str, object] = {}
    server = start_server(tmp_path / "server", settings=SERVER_SETTINGS)
    try:
        out["registrations"] = registrations.run(server, devices=20, concurrency=4)
        out["enrollments"] = enrollments.run(server, clients=2, batches=3)
        out["query"] = query.run(server, count=300)
        out["claims_sqlite"] = claims.run(server, count=200)
        out["audit_export"] = audit_export.run(server, count=300)
    finally:
        server.stop()

    reg = out["registrations"]
    assert isinstance(reg, dict)
    assert reg["measured"]["errors"] == reg["baseline"]["errors"] == 0
    for key in ("registrations", "enrollments", "query"):
        result = out[key]
        assert isinstance(result, dict)
        assert result["measured"]["rate"] > 0 and result["baseline"]["rate"] > 0
    claim = out["claims_sqlite"]
    assert isinstance(claim, dict)
    assert claim["measured"]["seconds"] > 0 and claim["baseline"]["seconds"] > 0
    export = out["audit_export"]
    assert isinstance(export, dict)
    assert (
        export["measured"]["rate"] > 0 and export["baseline"]["rate"] > 0 and export["measured"]["rss_mb"] > 0
    )
    out["sizes"] = {"enrollments_stored": 300, "claim": 200, "audit_entries": 300}
    table = _table(out)
    assert "registrations (devices/s" in table and "claim 200, sqlite" in table
    assert "query 300 enrollments" in table
    assert "audit export 300 entries" in table and "memory of audit export" in table
    assert "| 0.00 |" not in table  # a ratio rounded to zero would mean a broken measurement


def test_profile_summary_counts_self_time_by_package_and_function(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "run (provisiond/server.py:10);register (provisiond/services/registration.py:20);"
        "execute (sqlalchemy/engine/base.py:30) 3\n"
        "run (provisiond/server.py:10);do_handshake (OpenSSL/SSL.py:40) 1\n"
    )
    summary = summarize(raw)
    assert summary.splitlines()[0] == "4 samples (idle excluded)"
    assert "   75.0%  sqlalchemy" in summary
    assert "   25.0%  OpenSSL" in summary
    assert "   75.0%  execute (sqlalchemy)" in summary
    assert "   75.0%  register (provisiond.services)" in summary  # inclusive, provisiond frames
