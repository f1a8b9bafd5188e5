"""X.509 rules in the domain and the proxy header parser."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from provisiond.api.client_certs import parse_xfcc
from provisiond.domain.certificate_chains import anchor_depth, check_leaf, leaf_matches, presented_chain
from provisiond.domain.certificates import parse_certificate
from provisiond.errors import InvalidInput, Unauthorized
from tests.support.pki import issue

NOW = datetime.now(UTC)


def der(*issued: object) -> tuple[bytes, ...]:
    return tuple(i.cert.public_bytes(Encoding.DER) for i in issued)  # type: ignore[attr-defined]


def test_leaf_cn_must_be_the_registration_id_and_valid_now() -> None:
    check_leaf(presented_chain(der(issue("dev-1"))), "dev-1", NOW)
    with pytest.raises(Unauthorized, match="common name"):
        check_leaf(presented_chain(der(issue("dev-2"))), "dev-1", NOW)
    with pytest.raises(Unauthorized, match="not valid"):
        check_leaf(presented_chain(der(issue("dev-1", expired=True))), "dev-1", NOW)
    with pytest.raises(InvalidInput, match="64"):
        check_leaf(presented_chain(der(issue("x" * 64))), "x" * 65, NOW)


def test_individual_match_is_by_thumbprint_not_by_name() -> None:
    enrolled = issue("dev-1")
    same_name = issue("dev-1")
    kept = parse_certificate(enrolled.pem)
    assert leaf_matches(presented_chain(der(enrolled)), [None, kept]) == kept
    assert leaf_matches(presented_chain(der(same_name)), [kept]) is None


def test_anchor_depth_prefers_nothing_but_a_verified_path() -> None:
    root = issue("root", ca=True)
    inter = issue("inter", root, ca=True)
    leaf = issue("dev-1", inter)
    chain = presented_chain(der(leaf, inter))
    assert anchor_depth(chain, [root.cert], NOW) == (3, root.cert)
    assert anchor_depth(chain, [inter.cert], NOW) == (2, inter.cert)
    assert anchor_depth(presented_chain(der(leaf)), [root.cert], NOW) is None  # intermediate missing
    assert anchor_depth(chain, [issue("root", ca=True).cert], NOW) is None  # same name, other key
    assert anchor_depth(chain, [], NOW) is None


def test_unparseable_chain_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        presented_chain((b"not der",))
    with pytest.raises(Unauthorized):
        presented_chain(())


def test_xfcc_takes_cert_and_chain_of_the_last_element() -> None:
    leaf, inter = issue("dev-1"), issue("inter", ca=True)
    first = f'By=a;Cert="{urllib.parse.quote(inter.pem)}"'
    last = f'By=spiffe://b;Hash=ab;Cert="{urllib.parse.quote(leaf.pem)}";Chain="{urllib.parse.quote(leaf.pem + inter.pem)}"'
    assert parse_xfcc(f"{first},{last}") == [leaf.pem.strip(), inter.pem.strip()]
    assert parse_xfcc(f"Cert={urllib.parse.quote(leaf.pem, safe='')}") == [leaf.pem.strip()]


@pytest.mark.parametrize("value", ["", "By=x", 'Cert="unterminated', "Hash=1;;;"])
def test_xfcc_without_certificate_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_xfcc(value)
