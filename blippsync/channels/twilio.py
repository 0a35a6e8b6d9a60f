"""The twilio channel: SMS through Twilio's REST API over httpx.

POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded To/From/Body,
HTTP basic auth with the account SID and auth token. A 201 answer carries the message
SID ("SM..."). Errors come back as {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

from typing import Any

import httpx

from blippsync.channels import SMS, Delivery, DeliveryFailed, DeliveryUnknown, Message
from blippsync.config import Config
from blippsync.redaction import register_secret

API_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
UNSUBSCRIBED_CODE = 21610  # "Attempt to send to unsubscribed recipient": the carrier's STOP
RETRYABLE_STATUS = frozenset({429, 503})
# Error codes saying a number can never take our SMS: no further SMS goes to it. 30003
# (handset unreachable: off, no signal) is usually temporary, so only UNREACHABLE_LIMIT of
# them in a row count as permanent; 30007 (filtered) and 30034 (unregistered sender) are
# about our sending, not the number, and never suppress it.
PERMANENT_FAILURES = {
    "21610": "the recipient unsubscribed at the carrier (STOP)",
    "21614": "not a mobile number",
    "30005": "unknown or inactive number",
    "30006": "landline or unreachable carrier",
}
UNREACHABLE_CODE = "30003"
UNREACHABLE_LIMIT = 3


class TwilioChannel:
    name = "twilio"
    kinds = frozenset({SMS})

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float], httpx.Client] = {}

    def _client(self, config: Config) -> httpx.Client:
        key = (config["twilio.base_url"].rstrip("/"), float(config["twilio.timeout_seconds"]))
        if key not in self._clients:
            self._clients[key] = httpx.Client(base_url=key[0], timeout=key[1])
        return self._clients[key]

    def close(self) -> None:
        """Close the kept-alive connections (tests; the daemon's process exit does it too)."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def send(self, message: Message, config: Config) -> Delivery:
        sid, token = config["twilio.account_sid"], config["twilio.auth_token"]
        if not sid or not token:
            raise DeliveryFailed("twilio: twilio.account_sid and twilio.auth_token are not set",
                                 retryable=False)
        register_secret(token)
        form = {"To": message.to, "Body": message.body}
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        if config["twilio.messaging_service_sid"]:
            form["MessagingServiceSid"] = config["twilio.messaging_service_sid"]
        elif config["twilio.from_number"]:
            form["From"] = config["twilio.from_number"]
        else:
            raise DeliveryFailed("twilio: set twilio.from_number or twilio.messaging_service_sid",
                                 retryable=False)
        try:
            response = self._client(config).post(API_PATH.format(sid=sid), data=form,
                                                 auth=(sid, token))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise DeliveryFailed(f"twilio: cannot connect: {exc}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryUnknown(f"twilio: no answer after sending: "
                                  f"{type(exc).__name__}") from None
        return _outcome(response)


def _outcome(response: httpx.Response) -> Delivery:
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        body = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    if response.status_code in (200, 201) and body.get("sid"):
        return Delivery(provider_id=str(body["sid"]),
                        details={"status": body.get("status"),
                                 "num_segments": body.get("num_segments")})
    code, text = body.get("code"), body.get("message") or response.reason_phrase
    reason = (f"twilio: HTTP {response.status_code}" + (f" error {code}" if code else "")
              + f": {text}")
    if response.status_code in RETRYABLE_STATUS:
        raise DeliveryFailed(reason, retryable=True)
    if 400 <= response.status_code < 500:
        raise DeliveryFailed(reason, retryable=False, opt_out=code == UNSUBSCRIBED_CODE,
                             code=str(code) if code else None)
    raise DeliveryUnknown(reason)
