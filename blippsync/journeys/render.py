"""Turning a step and a customer into a `Message`: variables, links, footers, headers.

Every customer gets the same public review link (no rating-based gating: it breaks
Google's and the FTC's rules); the private-feedback link is an extra option beside it.
Every email ends with the business's postal address and an unsubscribe link (CAN-SPAM)
and carries List-Unsubscribe / List-Unsubscribe-Post (RFC 8058 one-click, which Gmail and
Yahoo require of bulk senders); the footer is added here, so no template can forget it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from blippsync.channels import Message
from blippsync.config import Config
from blippsync.google_review import review_url
from blippsync.journeys.email_layout import html_document
from blippsync.journeys.templates import (
    DEFAULT_BUDGET,
    RenderBudget,
    TemplateProblem,
    render,
    render_html,
)
from blippsync.journeys.unsubscribe import make_token


@dataclass(frozen=True, slots=True)
class RenderContext:
    link_base_url: str  # review links (/r/, /f/)
    unsubscribe_base_url: str  # where `blippsync run` serves /u/<token>; empty: no link
    unsubscribe_mailto: str
    unsubscribe_key: bytes
    sms_footer: str
    status_callback_url: str | None

    @classmethod
    def from_config(cls, config: Config, *, unsubscribe_key: bytes = b"") -> RenderContext:
        public = config["http.public_base_url"].rstrip("/")
        review = config["journeys.review_link_base_url"].rstrip("/")
        return cls(link_base_url=review, unsubscribe_base_url=public or review,
                   unsubscribe_mailto=config["email.unsubscribe_mailto"],
                   unsubscribe_key=unsubscribe_key,
                   sms_footer=config["journeys.sms_stop_footer"],
                   status_callback_url=f"{public}/sms/twilio/status" if public else None)

    def unsubscribe_link(self, ledger_id: uuid.UUID) -> tuple[str | None, str]:
        """(https link or None, token) of one message."""
        token = make_token(self.unsubscribe_key, ledger_id) if self.unsubscribe_key else ""
        if not token or not self.unsubscribe_base_url:
            return None, token
        return f"{self.unsubscribe_base_url}/u/{token}", token


def variables(ctx: RenderContext, customer: Any, business: Any, token: str,
              unsubscribe_link: str | None = None) -> dict[str, Any]:
    name = (customer.name or "").strip()
    first, _, last = name.partition(" ")
    google = review_url(business.google_review_url, business.google_place_id)
    review_link = f"{ctx.link_base_url}/r/{token}" if ctx.link_base_url and google else google
    return {
        "customer": {"name": name, "first_name": first or "there", "last_name": last.strip(),
                     "email": customer.email, "phone": customer.phone},
        "business": {"name": business.name, "phone": business.phone,
                     "website_url": business.website_url,
                     "google_review_url": google,
                     "postal_address": getattr(business, "postal_address", None)},
        "review_link": review_link,
        "feedback_link": f"{ctx.link_base_url}/f/{token}" if ctx.link_base_url else None,
        "google_review_url": google,
        "unsubscribe_link": unsubscribe_link,
    }


def render_step(ctx: RenderContext, *, step: Any, customer: Any, business: Any, send_key: str,
                token: str, ledger_id: uuid.UUID | None = None,
                budget: RenderBudget = DEFAULT_BUDGET) -> Message:
    """The message of an email or sms step; TemplateProblem when it cannot be made."""
    link, unsub_token = ctx.unsubscribe_link(ledger_id) if ledger_id else (None, "")
    values = variables(ctx, customer, business, token, link)
    config = step.message_config or {}
    if _mentions_review_link(config) and not values["review_link"]:
        raise TemplateProblem("the message links to the review form but the business has no "
                              "usable google_review_url (https on a Google host) or "
                              "google_place_id")
    common = dict(send_key=send_key, business_id=str(business.id), business_name=business.name,
                  customer_id=str(customer.id), metadata={"review_token": token})
    if step.channel == "sms":
        text = render(config.get("text", ""), values, budget)
        if ctx.sms_footer and "stop" not in text.lower():
            text += ctx.sms_footer
        return Message(kind="sms", to=customer.sms_phone, body=text,
                       status_callback=ctx.status_callback_url, **common)
    subject = render(config.get("subject", ""), values, budget)
    body = render(config.get("body", ""), values, budget)
    html = render_html(config.get("body", ""), values, budget)
    address = getattr(business, "postal_address", None)
    return Message(kind="email", to=customer.email, subject=subject,
                   body=body + text_footer(business.name, address, link),
                   html=html_document(subject, html, business.name, address, link),
                   from_address=getattr(business, "email_from_address", None),
                   reply_to=getattr(business, "email_reply_to", None),
                   headers=list_unsubscribe_headers(link, ctx.unsubscribe_mailto, unsub_token),
                   **common)


def text_footer(business: str, address: str | None, unsubscribe_link: str | None) -> str:
    lines = ["", "", "-- ", business + (f", {address}" if address else "")]
    if unsubscribe_link:
        lines.append(f"Unsubscribe from {business}'s emails: {unsubscribe_link}")
    return "\n".join(lines)


def list_unsubscribe_headers(link: str | None, mailto: str, token: str) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe (https first, then mailto) and RFC 8058 one-click."""
    targets = [f"<{link}>"] if link else []
    if mailto and token:
        targets.append(f"<mailto:{mailto}?subject={quote('unsubscribe ' + token)}>")
    headers = {"List-Unsubscribe": ", ".join(targets)} if targets else {}
    if link and link.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def _mentions_review_link(config: dict[str, Any]) -> bool:
    return any("review_link" in str(v) or "google_review_url" in str(v) for v in config.values())

