"""Turning a step and a customer into a `Message`: variables, review link, SMS footer.

Every customer gets the same public review link (no rating-based gating: it breaks
Google's and the FTC's rules); the private-feedback link is an extra option beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blippsync.channels import Message
from blippsync.config import Config
from blippsync.journeys.templates import DEFAULT_BUDGET, RenderBudget, TemplateProblem, render


@dataclass(frozen=True, slots=True)
class RenderContext:
    link_base_url: str
    sms_footer: str

    @classmethod
    def from_config(cls, config: Config) -> RenderContext:
        return cls(link_base_url=config["journeys.review_link_base_url"].rstrip("/"),
                   sms_footer=config["journeys.sms_stop_footer"])


def variables(ctx: RenderContext, customer: Any, business: Any, token: str) -> dict[str, Any]:
    name = (customer.name or "").strip()
    first, _, last = name.partition(" ")
    review_link = (f"{ctx.link_base_url}/r/{token}" if ctx.link_base_url
                   else business.google_review_url)
    return {
        "customer": {"name": name, "first_name": first or "there", "last_name": last.strip(),
                     "email": customer.email, "phone": customer.phone},
        "business": {"name": business.name, "phone": business.phone,
                     "website_url": business.website_url,
                     "google_review_url": business.google_review_url},
        "review_link": review_link,
        "feedback_link": f"{ctx.link_base_url}/f/{token}" if ctx.link_base_url else None,
        "google_review_url": business.google_review_url,
    }


def render_step(ctx: RenderContext, *, step: Any, customer: Any, business: Any, send_key: str,
                token: str, budget: RenderBudget = DEFAULT_BUDGET) -> Message:
    """The message of an email or sms step; TemplateProblem when it cannot be made."""
    values = variables(ctx, customer, business, token)
    config = step.message_config or {}
    if _mentions_review_link(config) and not values["review_link"]:
        raise TemplateProblem("the message links to the review form but the business has no "
                              "google_review_url")
    common = dict(send_key=send_key, business_id=str(business.id), business_name=business.name,
                  customer_id=str(customer.id), metadata={"review_token": token})
    if step.channel == "sms":
        text = render(config.get("text", ""), values, budget)
        if ctx.sms_footer and "stop" not in text.lower():
            text += ctx.sms_footer
        return Message(kind="sms", to=customer.sms_phone, body=text, **common)
    return Message(kind="email", to=customer.email,
                   subject=render(config.get("subject", ""), values, budget),
                   body=render(config.get("body", ""), values, budget), **common)


def _mentions_review_link(config: dict[str, Any]) -> bool:
    return any("review_link" in str(v) or "google_review_url" in str(v) for v in config.values())
