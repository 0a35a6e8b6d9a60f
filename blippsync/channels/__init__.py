"""Delivery channels: how a rendered message leaves the building.

A channel is a plugin (`register_channels(register)`), so a business can plug in its own
provider without touching the engine. A channel either returns a `Delivery` (accepted by
the provider) or raises one of two exceptions, and the difference matters for
exactly-once sending:

    DeliveryFailed   the provider certainly did not take the message (refused connection,
                     4xx answer...): safe to retry when `retryable`
    DeliveryUnknown  the request may have reached the provider (timeout after sending,
                     connection cut mid-answer): never retried blindly
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from blippsync.config import Config

EMAIL = "email"
SMS = "sms"


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered message for one customer, identified by its exactly-once send key."""

    kind: str  # "email" or "sms"
    send_key: str
    business_id: str
    business_name: str
    customer_id: str
    to: str  # an email address, or an E.164 number
    body: str
    subject: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None  # email: the HTML alternative of `body`
    from_address: str | None = None  # email: the business's own sender (else smtp.from_address)
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe
    status_callback: str | None = None  # sms: where the provider reports delivery


@dataclass(frozen=True, slots=True)
class Delivery:
    """The provider accepted the message."""

    provider_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


class DeliveryFailed(Exception):
    """The provider did not take the message. `opt_out`: it says the recipient opted out;
    `code`: the provider's own error code, when it gave one."""

    def __init__(self, reason: str, *, retryable: bool, opt_out: bool = False,
                 code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.opt_out = opt_out
        self.code = code


class DeliveryUnknown(Exception):
    """The message may or may not have been taken by the provider."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Channel(Protocol):
    """What a channel plugin provides."""

    name: str
    kinds: frozenset[str]  # which messages it can carry: {"email"}, {"sms"} or both

    def send(self, message: Message, config: Config) -> Delivery:
        """Deliver one message; raise DeliveryFailed or DeliveryUnknown otherwise."""
        ...


__all__ = ["EMAIL", "SMS", "Channel", "Delivery", "DeliveryFailed", "DeliveryUnknown", "Message"]
