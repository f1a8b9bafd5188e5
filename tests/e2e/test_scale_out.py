"""Scale-out against real processes: ``serve --processes N`` (refused on SQLite, one shared HTTPS
socket and one MQTT owner on PostgreSQL), ``provisiond worker`` stopping on SIGTERM/SIGINT, and
the whole topology — two servers and two workers on one PostgreSQL — finishing a 20,000-device
zero-touch claim with every device claimed exactly once although a worker is killed mid-run."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from provisiond.domain.claims import OperationState
from provisiond.store.db import Database
from provisiond.store.keyring import Keyring
from provisiond.store.tables import claims, devices
from tests.support.operations import (
    DONE,
    async_url,
    clean_database,
    imei,
    prepare_valid_claims,
    progress,
    run_worker_until_done,
    snapshot,
    start_worker,
    url_for,
)
from tests.support.server import PROVISIOND, ServerProcess, free_port, start_server

ENGINES = ["sqlite", "postgresql"]
REFUSAL = "--processes needs PostgreSQL"


# -- serve --processes -----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["flag", "settings file"])
def test_serve_with_two_processes_on_sqlite_exits_1_with_the_reason(where: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    args = ["serve", "--data-dir", str(data_dir), "--port", str(free_port()), "--no-mqtt"]
    if where == "flag":
        args += ["--processes", "2"]
    else:
        data_dir.mkdir()
        (data_dir / "settings.json").write_text(json.dumps({"processes": 2}))
    done = subprocess.run([*PROVISIOND, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert REFUSAL in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_fewer_than_one_process_before_doing_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [*PROVISIOND, "serve", "--data-dir", str(tmp_path / "data"), "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # One line naming the setting, like every bad setting (not typer's multi-line usage box).
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: bad settings") and "processes:" in done.stderr
    assert not (tmp_path / "data").exists()


def _children(pid: int, expected: int) -> list[int]:
    """The child processes of ``pid`` once there are ``expected`` of them (they fork at start-up)."""
    deadline = time.monotonic() + 10
    while len(found := Path(f"/proc/{pid}/task/{pid}/children").read_text().split()) < expected:
        assert time.monotonic() < deadline, f"{pid} has children {found}, not {expected}"
        time.sleep(0.05)
    return [int(c) for c in found]


def _inode(port: int, *, peer_port: int | None = None, timeout: float = 10) -> str:
    """The inode of the IPv4 socket on local ``port``, listening or connected to ``peer_port``;
    waits for it up to ``timeout`` (the MQTT listener opens once the first app has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inode := _find_inode(port, peer_port):
            return inode
        time.sleep(0.05)
    raise AssertionError(f"no socket on port {port} (peer {peer_port})")


def _find_inode(port: int, peer_port: int | None) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, peer, state, inode = (
            int(fields[1].split(":")[1], 16),
            int(fields[2].split(":")[1], 16),
            fields[3],
            fields[9],
        )
        if local == port and (state == "0A" if peer_port is None else peer == peer_port):
            return inode
    return None


def _holders(inode: str, pids: list[int]) -> set[int]:
    """Which of ``pids`` hold the socket ``inode`` open."""
    held = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    held.add(pid)
            except OSError:  # an fd closed while we looked
                continue
    return held


def test_two_serve_processes_on_postgresql_share_the_https_port_and_the_first_owns_mqtt(
    pg_url: str, tmp_path: Path
) -> None:
    """Every new connection is answered (an authenticated DPS read: the database works in each
    process); /proc shows which process accepted it, and both do."""
    asyncio.run(clean_database(pg_url))
    server = start_server(tmp_path, database=pg_url, serve_args=["--processes", "2"])
    try:
        first = server.proc.pid
        [second] = _children(first, 1)
        pids = [first, second]
        assert _holders(_inode(server.port), pids) == {first, second}  # bound once, inherited

        context = ssl.create_default_context(cafile=server.ca)
        sas = server.service_sas(600)
        answered_by: list[int] = []
        while len(set(answered_by)) < 2:
            assert len(answered_by) < 100, f"100 connections, all accepted by {set(answered_by)}"
            conn = http.client.HTTPSConnection("localhost", server.port, context=context, timeout=30)
            try:
                conn.request(
                    "GET", "/enrollments/nobody?api-version=2021-10-01", headers={"Authorization": sas}
                )
                response = conn.getresponse()
                assert response.status == 404, response.read()
                assert conn.sock is not None
                [holder] = _holders(_inode(server.port, peer_port=conn.sock.getsockname()[1]), pids)
                answered_by.append(holder)
            finally:
                conn.close()
        assert _holders(_inode(server.mqtt_port), pids) == {first}
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0
    assert not Path(f"/proc/{second}").exists()
    assert "Traceback" not in server.log.read_text()


# -- provisiond worker and signals -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("signals", [("SIGTERM",), ("SIGINT", "SIGINT")], ids=["SIGTERM", "SIGINT-twice"])
def test_worker_exits_0_on_a_signal_and_another_worker_finishes_the_operation_exactly_once(
    engine: str, signals: tuple[str, ...], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """One signal: the batch in hand is committed, then the worker exits. A second signal abandons
    the open batch (rolled back). Either way no half batch is left and the next worker, taking
    over when the lease expires, applies every remaining item once."""
    n, batch = 10_000, 100  # batches small enough that the signal lands mid-operation
    url = url_for(engine, tmp_path, request)
    partner_id, op_id = asyncio.run(prepare_valid_claims(url, n))
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = start_worker(url, tmp_path, batch, stdout=out, stderr=subprocess.STDOUT)
    try:
        while asyncio.run(progress(url, op_id)).processed == 0:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.02)
        for name in signals:
            proc.send_signal(signal.Signals[name])
        signalled = time.monotonic()
        assert proc.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - signalled < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
    at_stop = asyncio.run(progress(url, op_id))
    assert at_stop.processed < n, "finished before the signal: the test would prove nothing"
    assert at_stop.processed == at_stop.results and at_stop.processed % batch == 0

    final = run_worker_until_done(url, tmp_path, partner_id, op_id, batch)
    assert final["state"] is OperationState.COMPLETE and final["processed"] == n
    assert final["counts"] == {"devices": n, "claims": n, "results": n}
    assert all(
        r is not None and r["status"] == "success" and r["device_id"] == i + 1
        for i, r in enumerate(final["results"])
    )


# -- the whole topology ----------------------------------------------------------------------------

N = 20_000
BATCH = 250
SECTION = "SECTION_TYPE_ZERO_TOUCH"


def _bad(i: int) -> bool:
    return i % 997 == 5  # 21 items with an invalid IMEI among the 20,000


class ZeroTouch:
    """A partner's zero-touch client on one of the servers."""

    def __init__(self, server: ServerProcess, partner_id: str, token: str) -> None:
        self.partner = partner_id
        self.http = httpx.Client(
            base_url=server.base_url,
            verify=ssl.create_default_context(cafile=server.ca),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = self.http.request(method, path, json=body)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer


@pytest.fixture
def topology(pg_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two ``provisiond serve`` processes (no in-process worker) on one clean PostgreSQL database,
    sharing one outer key file as every process of one database must."""
    asyncio.run(clean_database(pg_url))
    shared = {"PROVISIOND_SECRETS_KEY_FILE": str(tmp_path / "outer.key")}
    with ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            server = start_server(
                tmp_path / name, database=pg_url, settings={"in_process_worker": False}, env=shared
            )
            stack.callback(server.stop)
            servers.append(server)
        yield servers[0], servers[1]


async def _device_rows(url: str) -> tuple[list[tuple[int, str | None]], list[tuple[int, int]], int]:
    db = Database(async_url(url), pool_size=1, keyring=Keyring.in_memory())
    try:
        async with db.read() as conn:
            found = [(r.id, r.imei) for r in await conn.execute(select(devices.c.id, devices.c.imei))]
            claimed = [
                (r.device_id, r.customer_id)
                for r in await conn.execute(select(claims.c.device_id, claims.c.customer_id))
            ]
            imeis = (await conn.execute(select(func.count(func.distinct(devices.c.imei))))).scalar_one()
        return found, claimed, imeis
    finally:
        await db.dispose()


def test_two_servers_and_two_workers_finish_a_claim_exactly_once_when_a_worker_is_killed(
    topology: tuple[ServerProcess, ServerProcess], pg_url: str, tmp_path: Path
) -> None:
    """Submitted through server A, polled through server B, run by two ``provisiond worker``
    processes: the one holding the lease is SIGKILLed mid-operation, the other takes over when
    the lease expires, and every device ends up created and claimed once, with the results an
    uninterrupted run gives."""
    a, b = topology
    created = json.loads(a.cli("partner", "create", "scale-out", "--json").stdout)
    partner_id, token = created["partnerId"], created["token"]
    via_a, via_b = ZeroTouch(a, partner_id, token), ZeroTouch(b, partner_id, token)
    customer = via_a.ok(
        "POST",
        f"/v1/partners/{partner_id}/customers",
        {"customer": {"companyName": "Fleet", "ownerEmails": ["it@fleet.example"]}},
    )["companyId"]

    workers = []
    for name in ("w1", "w2"):
        with (tmp_path / f"{name}.log").open("wb") as out:
            workers.append(
                start_worker(
                    pg_url,
                    tmp_path,
                    BATCH,
                    lease=2,
                    secrets_key_file=tmp_path / "outer.key",
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        claims_body = [
            {
                "customerId": customer,
                "sectionType": SECTION,
                "deviceIdentifier": {"imei": "1234" if _bad(i) else imei(i), "manufacturer": "Google"},
            }
            for i in range(N)
        ]
        submitted = via_a.ok("POST", f"/v1/partners/{partner_id}/devices:claimAsync", {"claims": claims_body})
        name = submitted["name"]
        op_id = int(name.rsplit("/", 1)[1])

        by_pid = {w.pid: w for w in workers}
        deadline = time.monotonic() + 60
        while True:  # kill -9 the lease holder once it has committed some batches
            assert time.monotonic() < deadline, "no worker made progress"
            assert all(w.poll() is None for w in workers), "a worker died before the kill"
            now = asyncio.run(progress(pg_url, op_id))
            assert now.processed < N, "finished before the kill: the test would prove nothing"
            if now.processed >= N // 10 and now.lease_pid in by_pid:
                killed = by_pid.pop(now.lease_pid)
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        assert killed.wait(timeout=10) == -signal.SIGKILL
        at_kill = asyncio.run(progress(pg_url, op_id))
        assert 0 < at_kill.processed < N and at_kill.processed == at_kill.results
        [survivor] = by_pid.values()

        deadline = time.monotonic() + 60
        while not (op := via_b.ok("GET", f"/v1/{name}"))["done"]:
            assert time.monotonic() < deadline, f"still running: {op['metadata']}"
            assert survivor.poll() is None, "the surviving worker died"
            time.sleep(0.2)

        # the wire answer, through the server that did not take the request
        assert op["metadata"]["processingStatus"] == "BATCH_PROCESS_PROCESSED"
        assert op["response"]["successCount"] == N - sum(map(_bad, range(N)))
        statuses = op["response"]["perDeviceStatus"]
        assert len(statuses) == N
        for i, status in enumerate(statuses):
            assert status["claim"]["deviceIdentifier"] == claims_body[i]["deviceIdentifier"]
            if _bad(i):
                assert status["result"]["status"] == "SINGLE_DEVICE_STATUS_INVALID_DEVICE_IDENTIFIER"
                assert status["result"]["errorIdentifier"] == "INVALID_DEVICE_IMEI"
            else:
                assert status["result"] == {
                    "status": "SINGLE_DEVICE_STATUS_SUCCESS",
                    "deviceId": str(op_id * 100_000 + i + 1),
                }

        # the database: every item has one result, every valid device one record and one claim
        good = [i for i in range(N) if not _bad(i)]
        final = asyncio.run(snapshot(pg_url, int(partner_id), op_id))
        assert final["state"] is OperationState.COMPLETE_WITH_ERRORS and final["processed"] == N
        assert final["counts"] == {"devices": len(good), "claims": len(good), "results": N}
        for i, result in enumerate(final["results"]):
            assert result is not None
            if _bad(i):
                assert (result["status"], result["code"], result["device_id"]) == (
                    "invalid_identifier",
                    "INVALID_DEVICE_IMEI",
                    None,
                )
            else:
                assert result == {"status": "success", "device_id": i + 1, "code": None, "message": None}
        found, claimed, distinct_imeis = asyncio.run(_device_rows(pg_url))
        assert sorted(found) == [(op_id * 100_000 + i + 1, imei(i)) for i in good]
        assert distinct_imeis == len(good)
        assert sorted(claimed) == [(op_id * 100_000 + i + 1, int(customer)) for i in good]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=15) for worker in workers]
        via_a.http.close()
        via_b.http.close()
    assert sorted(codes) == [-signal.SIGKILL, 0]  # the survivor, idle again, stops cleanly on SIGTERM
    assert asyncio.run(progress(pg_url, op_id)).state in DONE
