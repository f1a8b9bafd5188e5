"""The webhook allow-list and the redaction of function keys."""

from __future__ import annotations

import pytest

from provisiond.domain.webhooks import check_webhook_url, redact_webhook_url
from provisiond.errors import InvalidInput


@pytest.mark.parametrize(
    ("url", "allow", "http_ok"),
    [
        ("https://fn.example/api/alloc?code=k", ["https://*"], False),
        ("https://fn.example/api/alloc", ["https://fn.example/*"], False),
        ("http://127.0.0.1:8080/hook", ["http://127.0.0.1:*"], True),
    ],
)
def test_allowed_urls(url: str, allow: list[str], http_ok: bool) -> None:
    check_webhook_url(url, allow, http_ok)


@pytest.mark.parametrize(
    ("url", "allow", "http_ok"),
    [
        ("http://fn.example/a", ["http://*"], False),
        ("https://evil.example/a", ["https://fn.example/*"], False),
        ("ftp://fn.example/a", ["*"], True),
        ("https:///nohost", ["*"], True),
        ("https://fn.example/a", [], True),
    ],
)
def test_refused_urls(url: str, allow: list[str], http_ok: bool) -> None:
    with pytest.raises(InvalidInput):
        check_webhook_url(url, allow, http_ok)


def test_redaction_masks_the_query_only() -> None:
    assert redact_webhook_url("https://fn.example/api/a?code=secret") == "https://fn.example/api/a?****"
    assert redact_webhook_url("https://fn.example/api/a") == "https://fn.example/api/a"
