"""A bounded fuzz of every HTTP route of `blippsync run`: no request may get a 5xx.

Seeded (reproducible) requests over real loopback HTTP: every route and method, unknown
paths and methods, hostile headers (non-ASCII, CR-less garbage, huge), bodies of random
bytes, malformed and hostile JSON (NUL escapes, NaN/Infinity, deep nesting, huge numbers)
and forms, unsigned and *correctly signed* (so the fuzz reaches parsing and storage, not
only the signature check), for the QuickBooks and Jobber webhooks and Twilio's inbound
SMS. The count of requests and of 5xx answers is printed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import test_daemon_support as support
from journey_support import make_business, make_customer
from signing import hmac_sha256_base64, twilio_sha1

from blippsync.config import load_config
from blippsync.database import Database

SEED = 20261203
ROUNDS = 150  # per generator below: about 1,800 requests
VERIFIER, JOBBER_SECRET, TWILIO = "qbo-verifier-fuzz", "jobber-secret-fuzz", "twilio-fuzz"
HEALTH = "health-fuzz"


@pytest.fixture
def base(tmp_path: Path, database_url: str, db: Database) -> Iterator[str]:
    config = load_config(support.write_config(tmp_path / "c.toml", database_url, "http://x"),
                         environ={}).with_values(
        quickbooks__webhook_verifier_token=VERIFIER, jobber__client_secret=JOBBER_SECRET,
        twilio__auth_token=TWILIO, http__health_token=HEALTH, http__max_body_bytes=65536)
    business = make_business(db)  # a customer behind the number the SMS fuzz writes from
    make_customer(db, business, phone="+14155550001")
    with support.serving(config, db) as url:
        yield url


def _junk_text(rng: random.Random, n: int = 40) -> str:
    alphabet = ["a", "Z", "0", " ", "\x00", "\n", "\r", "\u00e9", "\u2028", "\ud7ff", "%",
                "&", "=", "'", '"', "\\", "{", "}", "\U0001f600", "\t", "/", ".."]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))


def _junk_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return _junk_text(rng)
    if kind == 1:
        return rng.choice([0, -1, 10**30, 1e308, float("inf"), float("-inf"), float("nan")])
    if kind == 2:
        return rng.choice([None, True, False])
    if kind == 3:
        return "\x00" * rng.randint(1, 3)
    if kind == 4:
        return rng.choice(["", "Q2xpZW50LzE=", "9341452732952867", "2026-13-45T99:00:00Z"])
    if kind == 5:
        return [_junk_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["id", "type", "time", "intuitaccountid", "intuitentityid", "data", "topic",
            "accountId", "itemId", "occurredAt", "appId", "webHookEvent", "eventNotifications",
            "realmId", "dataChangeEvent", "entities", "name", "operation", "lastUpdated"]
    return {rng.choice(keys) if rng.random() < 0.8 else _junk_text(rng, 8):
            _junk_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _shaped(rng: random.Random, connector: str) -> Any:
    """Roughly the sender's own shape, with hostile values in it."""
    if connector == "quickbooks":
        if rng.random() < 0.5:
            return [{"specversion": "1.0", "id": _junk_json(rng), "type": rng.choice(
                ["qbo.customer.updated.v1", "qbo.invoice.created.v1", _junk_text(rng, 10)]),
                "time": _junk_json(rng), "intuitaccountid": _junk_json(rng),
                "intuitentityid": _junk_json(rng), "data": _junk_json(rng)}
                for _ in range(rng.randint(0, 3))]
        return {"eventNotifications": [{"realmId": _junk_json(rng), "dataChangeEvent": {
            "entities": [{"name": _junk_json(rng), "id": _junk_json(rng), "operation":
                          _junk_json(rng), "lastUpdated": _junk_json(rng),
                          "deletedId": _junk_json(rng)}]}}]}
    return {"data": {"webHookEvent": {"topic": rng.choice(
        ["CLIENT_UPDATE", "APP_DISCONNECT", "INVOICE_UPDATE", "VISIT_COMPLETE",
         _junk_text(rng, 12)]), "appId": _junk_json(rng), "accountId": _junk_json(rng),
        "itemId": _junk_json(rng), "occurredAt": _junk_json(rng)}}}


def _dumps(rng: random.Random, value: Any) -> bytes:
    text = json.dumps(value, allow_nan=True)  # Infinity/NaN: what json.loads accepts
    if rng.random() < 0.1:
        text = text[: rng.randint(0, len(text))]  # truncated
    return text.encode("utf-8", "surrogatepass")


def _webhook(rng: random.Random, base: str) -> httpx.Request:
    connector = rng.choice(["quickbooks", "jobber", "nope", _junk_text(rng, 6) or "x"])
    body = (_dumps(rng, _shaped(rng, connector)) if rng.random() < 0.7 else
            rng.randbytes(rng.randint(0, 400)))
    key, header = ((VERIFIER, "intuit-signature") if connector == "quickbooks" else
                   (JOBBER_SECRET, "x-jobber-hmac-sha256"))
    signature = hmac_sha256_base64(body, key) if rng.random() < 0.8 else _junk_text(rng, 30)
    ctype = rng.choice(["application/json", "application/cloudevents+json",
                        "application/cloudevents-batch+json", "text/plain", "",
                        "application/json; charset=\u00e9"])
    headers = {"content-type": ctype, header: signature}
    return httpx.Request("POST", f"{base}/webhooks/{quote(connector, safe='')}", content=body,
                         headers=_encode(headers))


def _sms(rng: random.Random, base: str) -> httpx.Request:
    fields = [(rng.choice(["From", "Body", "MessageSid", "To", _junk_text(rng, 5)]),
               _junk_text(rng)) for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.5:
        fields.append(("From", rng.choice(["+14155550001", "+1 (415) 555-0001", "STOP"])))
    query = "" if rng.random() < 0.6 else "?" + urlencode({"t": _junk_text(rng, 6)})
    body = urlencode(fields).encode()
    signed = twilio_sha1(f"{base}/sms/twilio{query}", fields, TWILIO)
    signature: str | bytes = signed if rng.random() < 0.7 else rng.choice(
        [_junk_text(rng, 30), "\u00e9t\u00e9".encode("latin-1"), b"\xff" * 28])
    return httpx.Request("POST", f"{base}/sms/twilio{query}", content=body, headers=_encode({
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}))


def _other(rng: random.Random, base: str) -> httpx.Request:
    path = rng.choice(["/healthz", "/metrics", "/r/" + quote(_junk_text(rng, 20), safe=""),
                       "/r/abcdefgh1234", "/r/" + "A" * 200, "/" + quote(_junk_text(rng, 10)),
                       "/webhooks/", "/sms/twilio", "/healthz?details=1"])
    method = rng.choice(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
    headers: dict[str, str | bytes] = {}
    if rng.random() < 0.5:
        headers["authorization"] = rng.choice([f"Bearer {HEALTH}", "Bearer \u00e9".encode(
            "latin-1"), "Basic Zm9vOmJhcg==", "Bearer", _junk_text(rng, 20)])
    return httpx.Request(method, f"{base}{path}", headers=_encode(headers),
                         content=rng.randbytes(rng.randint(0, 64)) if method != "GET" else None)


def _encode(headers: dict[str, str | bytes]) -> dict[str, bytes]:
    """Header values as octets (HTTP allows any; latin-1 is what servers decode them as)."""
    out = {}
    for name, value in headers.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        # what h11 can send: no NUL/CR/LF, no surrounding whitespace
        out[name] = bytes(b for b in raw if b not in (0, 10, 13)).strip(b" \t")
    return out


def test_no_route_answers_5xx_to_anything(base: str) -> None:
    rng = random.Random(SEED)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    with httpx.Client(timeout=15) as client:
        for _ in range(ROUNDS):
            for make in (_webhook, _webhook, _webhook, _webhook, _sms, _sms, _sms, _other,
                         _other, _other, _other, _other):
                request = make(rng, base)
                response = client.send(request)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{request.method} {request.url} -> "
                                    f"{response.status_code} {response.text[:200]}")
    total = sum(statuses.values())
    print(f"\nhttp fuzz: {total} requests, {sum(v for k, v in statuses.items() if k >= 500)} "
          f"5xx; statuses {dict(sorted(statuses.items()))}")
    assert total >= 1500
    assert failures == []
    assert statuses[200] > 100  # signed deliveries got through to parsing and storage
