"""Webhook signatures against the providers' published vectors: the production verifiers
and the tests' own signers (tests/signing.py) must both agree with them."""

from __future__ import annotations

import base64

import pytest
from signing import hmac_sha256_base64, twilio_sha1

from blippsync.http.twilio_requests import twilio_signature
from connectors.jobber import JobberConnector
from connectors.quickbooks import QuickBooksConnector

# RFC 4231, test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
RFC4231_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

# Intuit's QuickBooks V3 Java SDK, WebhooksServiceTest (verifier token, payload, signature).
INTUIT_TOKEN = "b5771f19b12ddb4bcdb9f08bdc50bc63878a"
INTUIT_PAYLOAD = (b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":'
                  b'[{"name":"Customer","id":"1","operation":"Create",'
                  b'"lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}')
INTUIT_SIGNATURE = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q="

# Twilio's request-validation example (its docs and the twilio-php/-csharp test suites).
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_FIELDS = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"),
                 ("Digits", "1234"), ("From", "+14158675309"), ("To", "+18005551212")]
TWILIO_VECTORS = [
    (TWILIO_URL, TWILIO_FIELDS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    # a repeated field: each distinct name+value counts once
    (TWILIO_URL, [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
                  ("Digits", "1234"), ("Digits", "1234")], "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
    # the URL as Twilio signed it, with the default port spelled out
    ("https://mycompany.com:443/myapp.php?foo=1&bar=2", TWILIO_FIELDS,
     "kvajT1Ptam85bY51eRf/AJRuM3w="),
]


def test_the_hmac_sha256_signer_matches_rfc_4231() -> None:
    expected = base64.b64encode(bytes.fromhex(RFC4231_HEX)).decode()
    assert hmac_sha256_base64(b"what do ya want for nothing?", "Jefe") == expected


def test_quickbooks_accepts_intuits_published_vector_and_nothing_else() -> None:
    qbo, settings = QuickBooksConnector(), {"webhook_verifier_token": INTUIT_TOKEN}
    assert hmac_sha256_base64(INTUIT_PAYLOAD, INTUIT_TOKEN) == INTUIT_SIGNATURE
    assert qbo.verify_webhook({"intuit-signature": INTUIT_SIGNATURE}, INTUIT_PAYLOAD, settings)
    assert qbo.verify_webhook({"Intuit-Signature": INTUIT_SIGNATURE}, INTUIT_PAYLOAD, settings)
    assert not qbo.verify_webhook({"intuit-signature": "1234"}, INTUIT_PAYLOAD, settings)
    assert not qbo.verify_webhook({"intuit-signature": INTUIT_SIGNATURE},
                                  INTUIT_PAYLOAD.replace(b'"1"', b'"2"'), settings)
    assert not qbo.verify_webhook({"intuit-signature": INTUIT_SIGNATURE}, INTUIT_PAYLOAD,
                                  {"webhook_verifier_token": "another-token"})
    assert not qbo.verify_webhook({}, INTUIT_PAYLOAD, settings)


def test_jobber_checks_the_documented_scheme() -> None:
    """Jobber publishes a worked example without its secret, so the scheme (base64
    HMAC-SHA256 of the raw body, keyed by the client secret) is checked with the RFC-pinned
    signer."""
    body = (b'{"data":{"webHookEvent":{"topic":"APP_CONNECT","appId":"id","accountId":"id",'
            b'"itemId":"id","occurredAt":"ISO8601DateTime"}}}')
    signed = {"X-Jobber-Hmac-SHA256": hmac_sha256_base64(body, "client-secret")}
    jobber = JobberConnector()
    assert jobber.verify_webhook(signed, body, {"client_secret": "client-secret"})
    assert not jobber.verify_webhook(signed, body, {"client_secret": "other"})
    assert not jobber.verify_webhook(signed, body + b"\n", {"client_secret": "client-secret"})


@pytest.mark.parametrize(("url", "fields", "expected"), TWILIO_VECTORS)
def test_twilio_signatures_match_twilios_published_vectors(url: str, fields: list[tuple[str, str]],
                                                            expected: str) -> None:
    assert twilio_signature(url, fields, TWILIO_TOKEN) == expected
    assert twilio_sha1(url, fields, TWILIO_TOKEN) == expected
    assert twilio_signature(url, fields, "54321") != expected
