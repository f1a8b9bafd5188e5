"""Drive the official Python zero-touch client (google-api-python-client 2.202.0) against provisiond.

Run with the compat interpreter (``.venv-compat/bin/python``), never the server's. Reads
``TEST_CA_PEM``, ``DPS_HTTPS_PORT``, ``ZT_TOKEN``, ``ZT_PARTNER`` and ``ZT_OTHER_PARTNER`` (a partner
that is not ours) from the environment; ``argv[1]`` is an 8-digit prefix that makes this run's
IMEIs unique on a shared server.

The client is built as docs/zerotouch.md shows: the bundled (static) discovery document, the
``api_endpoint`` client option, and ``AuthorizedHttp(Credentials(token), http=Http(ca_certs=…))``.
It performs the reseller workflow once and prints ONE JSON line of observations; a step that raised
something it was not meant to is recorded under ``"unexpected"`` (traceback on stderr, exit 1).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

SECTION = "SECTION_TYPE_ZERO_TOUCH"
ASYNC_COUNT = 1000
FIND_LIMIT = 100  # findByOwner page size (the maximum): the claimed devices span 10 pages
POLL_TIMEOUT = 120.0


def luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return str(-total % 10)


def imei(prefix: str, n: int) -> str:
    body = f"{prefix}{n:06d}"
    return body + luhn_digit(body)


def bad_imei(prefix: str, n: int) -> str:
    good = imei(prefix, n)
    return good[:14] + str((int(good[14]) + 1) % 10)


def client(token: str) -> Any:
    http = AuthorizedHttp(Credentials(token=token), http=httplib2.Http(ca_certs=os.environ["TEST_CA_PEM"]))
    return build(
        "androiddeviceprovisioning",
        "v1",
        http=http,
        client_options={"api_endpoint": f"https://localhost:{os.environ['DPS_HTTPS_PORT']}/"},
        static_discovery=True,
        cache_discovery=False,
    )


def http_error(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a call that must fail; record the status and reason (``error.message``) it failed with."""
    try:
        result = call()
    except HttpError as exc:
        return {"status": exc.resp.status, "reason": exc.reason, "body": json.loads(exc.content)}
    except RefreshError as exc:
        # AuthorizedHttp answers a 401 by refreshing the credentials, which a bare token cannot do.
        return {"status": None, "refresh_error": type(exc).__name__}
    return {"status": None, "unexpectedly_returned": result}


def key_only_client() -> Any:
    """A client with an API key and no credentials: it sends ``?key=`` and no Authorization."""
    return build(
        "androiddeviceprovisioning",
        "v1",
        http=httplib2.Http(ca_certs=os.environ["TEST_CA_PEM"]),
        developerKey="AIzaSyNotAKey",
        client_options={"api_endpoint": f"https://localhost:{os.environ['DPS_HTTPS_PORT']}/"},
        static_discovery=True,
        cache_discovery=False,
    )


def poll(zt: Any, op: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Loop on operations.get until done (the client never polls by itself)."""
    deadline = time.monotonic() + POLL_TIMEOUT
    polls = 0
    while not op.get("done"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"operation {op.get('name')} not done after {POLL_TIMEOUT}s")
        time.sleep(0.2)
        op = zt.operations().get(name=op["name"]).execute()
        polls += 1
    return op, polls


def main() -> int:
    prefix = sys.argv[1]
    partner = os.environ["ZT_PARTNER"]
    zt = client(os.environ["ZT_TOKEN"])
    customers, devices = zt.partners().customers(), zt.partners().devices()
    obs: dict[str, Any] = {"unexpected": []}

    def step(name: str, action: Callable[[], Any]) -> Any:
        try:
            obs[name] = action()
        except Exception as exc:
            traceback.print_exc()
            obs[name] = {"unexpected": f"{type(exc).__name__}: {exc}"}
            obs["unexpected"].append(name)
        return obs[name]

    def create(name: str) -> Any:
        body = {"customer": {"companyName": name, "ownerEmails": [f"owner@{name.lower()}.example"]}}
        return customers.create(parent=f"partners/{partner}", body=body).execute()

    first = step("create_first", lambda: create(f"First{prefix}"))
    second = step("create_second", lambda: create(f"Second{prefix}"))

    def list_all() -> Any:
        pages, token = [], None
        while True:
            page = customers.list(partnerId=partner, pageSize=1, pageToken=token).execute()
            pages.append(page)
            token = page.get("nextPageToken")
            if token is None or len(pages) > 1000:
                return pages

    step("list_pages", list_all)
    first_id, second_id = first["companyId"], second["companyId"]

    def claim(customer: str, n: int) -> Any:
        body = {
            "customerId": customer,
            "sectionType": SECTION,
            "deviceIdentifier": {"imei": imei(prefix, n), "manufacturer": "Google"},
        }
        return devices.claim(partnerId=partner, body=body).execute()

    claimed = step("claim", lambda: claim(first_id, 0))
    step("claim_again", lambda: claim(first_id, 0))
    step("claim_conflict", lambda: http_error(lambda: claim(second_id, 0)))

    # 1,000 claims: item 0 is the device claimed above (a success: nothing to do); every 50th has
    # a bad check digit, every 101st an unknown manufacturer, item 999 an unknown customer.
    claims = []
    for n in range(ASYNC_COUNT):
        identifier = {"imei": imei(prefix, n), "manufacturer": "Google"}
        customer = first_id
        if n % 50 == 7:
            identifier["imei"] = bad_imei(prefix, n)
        elif n % 101 == 3:
            identifier["manufacturer"] = "Nobody Inc"
        elif n == ASYNC_COUNT - 1:
            customer = "424242"
        claims.append({"customerId": customer, "sectionType": SECTION, "deviceIdentifier": identifier})
    obs["claims_sent"] = claims

    def claim_async() -> Any:
        started = devices.claimAsync(partnerId=partner, body={"claims": claims}).execute()
        done, polls = poll(zt, started)
        return {"started": started, "done": done, "polls": polls}

    step("claim_async", claim_async)

    step(
        "find_by_identifier",
        lambda: devices.findByIdentifier(
            partnerId=partner,
            body={"deviceIdentifier": {"imei": imei(prefix, 1), "manufacturer": "Google"}, "limit": "10"},
        ).execute(),
    )

    def find_by_owner() -> Any:
        pages, token = [], None
        while True:
            body = {"customerId": [first_id], "sectionType": SECTION, "limit": str(FIND_LIMIT)}
            if token:
                body["pageToken"] = token
            page = devices.findByOwner(partnerId=partner, body=body).execute()
            pages.append(
                {
                    "ids": [d["deviceId"] for d in page.get("devices", [])],
                    "totalSize": page.get("totalSize"),
                    "nextPageToken": page.get("nextPageToken"),
                }
            )
            token = page.get("nextPageToken")
            if token is None or len(pages) > 100:
                return pages

    step("find_by_owner", find_by_owner)

    device_id = claimed["deviceId"]
    step(
        "metadata",
        lambda: devices.metadata(
            metadataOwnerId=partner,
            deviceId=device_id,
            body={"deviceMetadata": {"entries": {"order": "PO-42"}}},
        ).execute(),
    )
    step("get_device", lambda: devices.get(name=f"partners/{partner}/devices/{device_id}").execute())

    def unclaim_async() -> Any:
        owned = [id_ for page in obs["find_by_owner"] for id_ in page["ids"]]
        unclaims = [{"deviceId": id_, "sectionType": SECTION} for id_ in owned]
        unclaims.append({"deviceId": "987654321", "sectionType": SECTION})
        started = devices.unclaimAsync(partnerId=partner, body={"unclaims": unclaims}).execute()
        done, polls = poll(zt, started)
        return {"sent": unclaims, "done": done, "polls": polls}

    step("unclaim_async", unclaim_async)
    step(
        "get_after_unclaim",
        lambda: http_error(lambda: devices.get(name=f"partners/{partner}/devices/{device_id}").execute()),
    )
    step("claim_for_sync_unclaim", lambda: claim(second_id, 0))
    step(
        "unclaim",
        lambda: devices.unclaim(
            partnerId=partner,
            body={
                "deviceIdentifier": {"imei": imei(prefix, 0), "manufacturer": "Google"},
                "sectionType": SECTION,
            },
        ).execute(),
    )
    step(
        "bad_token",
        lambda: http_error(
            lambda: client("not-a-token").partners().customers().list(partnerId=partner).execute()
        ),
    )
    step(
        "key_only",
        lambda: http_error(
            lambda: key_only_client().partners().customers().list(partnerId=partner).execute()
        ),
    )
    step(
        "other_partner_path",
        lambda: http_error(lambda: customers.list(partnerId=os.environ["ZT_OTHER_PARTNER"]).execute()),
    )
    step(
        "unknown_operation",
        lambda: http_error(lambda: zt.operations().get(name="operations/apibatchoperation/1").execute()),
    )

    print(json.dumps(obs, separators=(",", ":")))
    return 1 if obs["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
