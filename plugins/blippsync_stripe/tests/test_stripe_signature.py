"""Stripe-Signature verification against Stripe's documented scheme. The oracle is openssl
(and two vectors it produced, pinned below), never the connector's own signer."""

from __future__ import annotations

import time

import pytest
from blippsync_stripe import StripeConnector
from blippsync_stripe.signature import verify
from stripe_events import header, openssl_signature

BODY = b'{"id":"evt_1","object":"event"}'
T = 1_700_000_000
# printf '%s' '1700000000.{"id":"evt_1","object":"event"}' | openssl dgst -sha256 -hmac SECRET
PINNED = {"whsec_test_secret": "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd",
          "whsec_old_secret": "921476aa6febf6d11353fcee45246000c9edf7b3938ae2d09a2d6ea5cb98d9db"}


def test_pinned_vectors() -> None:
    for secret, digest in PINNED.items():
        assert openssl_signature(secret, T, BODY) == digest
        assert verify(f"t={T},v1={digest}", BODY, [secret], now=T)
        assert verify(f"t={T},v1={digest.upper()}", BODY, [secret], now=T)  # hex either case


def test_tampering_is_refused() -> None:
    good = f"t={T},v1={PINNED['whsec_test_secret']}"
    assert not verify(good, BODY + b" ", ["whsec_test_secret"], now=T)       # body changed
    assert not verify(good.replace(str(T), str(T + 1)), BODY, ["whsec_test_secret"], now=T)
    assert not verify(good, BODY, ["whsec_other"], now=T)                     # wrong secret
    assert not verify(f"v1={PINNED['whsec_test_secret']}", BODY, ["whsec_test_secret"], now=T)
    assert not verify(f"t={T}", BODY, ["whsec_test_secret"], now=T)            # no signature
    assert not verify(f"t={T},v0={PINNED['whsec_test_secret']}", BODY, ["whsec_test_secret"],
                      now=T)                                                  # v0 is not v1
    assert not verify("", BODY, ["whsec_test_secret"], now=T)
    assert not verify("garbage,,==,t=x", BODY, ["whsec_test_secret"], now=T)


@pytest.mark.parametrize("skew, ok", [(0, True), (299, True), (-299, True), (301, False),
                                      (-301, False), (86_400, False)])
def test_tolerance_window_against_replays(skew: int, ok: bool) -> None:
    good = f"t={T},v1={PINNED['whsec_test_secret']}"
    assert verify(good, BODY, ["whsec_test_secret"], now=T + skew) is ok


def test_secret_rotation_either_side() -> None:
    # while Stripe rolls the endpoint secret it sends one v1 per valid secret
    rolled = f"t={T},v1={PINNED['whsec_old_secret']},v1={PINNED['whsec_test_secret']}"
    assert verify(rolled, BODY, ["whsec_test_secret"], now=T)
    assert verify(rolled, BODY, ["whsec_old_secret"], now=T)
    # and we may hold two secrets (two endpoints, or our own roll)
    assert verify(f"t={T},v1={PINNED['whsec_old_secret']}", BODY,
                  ["whsec_test_secret", "whsec_old_secret"], now=T)


def test_connector_reads_the_header_and_its_settings() -> None:
    connector = StripeConnector()
    now = int(time.time())
    fresh = header("whsec_live", now, BODY)
    settings = {"webhook_secret": "whsec_previous, whsec_live"}
    assert connector.verify_webhook({"Stripe-Signature": fresh}, BODY, settings)
    assert not connector.verify_webhook({"stripe-signature": fresh}, BODY + b"x", settings)
    stale = header("whsec_live", now - 600, BODY)
    assert not connector.verify_webhook({"stripe-signature": stale}, BODY, settings)
    assert connector.verify_webhook({"stripe-signature": stale}, BODY,
                                    {**settings, "tolerance_seconds": 900})
    with pytest.raises(Exception, match="webhook_secret is not set"):
        connector.verify_webhook({"stripe-signature": fresh}, BODY, {})
