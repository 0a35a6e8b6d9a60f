"""`blippsync stripe link`: a connection per business, keyed by its Stripe customer id."""

from __future__ import annotations

import uuid

import click
import sqlalchemy as sa

_SET_CUSTOMER = sa.text("UPDATE public.businesses SET stripe_customer_id = :customer "
                        "WHERE id = :id RETURNING id")
_LINKABLE = sa.text("SELECT id, stripe_customer_id FROM public.businesses "
                    "WHERE stripe_customer_id LIKE 'cus\\_%' ORDER BY created_at")
_CUSTOMER_OF = sa.text("SELECT stripe_customer_id FROM public.businesses WHERE id = :id")


@click.group("stripe")
def stripe() -> None:
    """Billing status from Stripe (the blippsync-stripe plugin)."""


@stripe.command("link")
@click.option("--business", "business_id", help="The business to link.")
@click.option("--customer", help="Its Stripe customer id (cus_...); default: the one stored.")
@click.option("--all", "link_all", is_flag=True,
              help="Link every business that has a stripe_customer_id.")
@click.pass_context
def link(ctx: click.Context, business_id: str | None, customer: str | None,
         link_all: bool) -> None:
    """Create the stripe connection of a business (or of all), keyed by its customer id."""
    from blippsync.cli import get_app
    from blippsync.connections import ensure_connection
    from blippsync.errors import InputError, NotFoundError

    if link_all == bool(business_id):
        raise InputError("name one business with --business ID, or use --all")
    if customer is not None and not customer.startswith("cus_"):
        raise InputError(f"--customer: {customer!r} is not a Stripe customer id (cus_...)")
    db = get_app(ctx).ready_db()
    with db.begin() as conn:
        if link_all:
            pairs = [(r.id, r.stripe_customer_id) for r in conn.execute(_LINKABLE)]
        else:
            try:
                key = uuid.UUID(str(business_id))
            except ValueError:
                raise InputError(f"--business: {business_id!r} is not an id (a UUID)") from None
            if customer and conn.execute(_SET_CUSTOMER, {"customer": customer, "id": key}
                                         ).first() is None:
                raise NotFoundError(f"no business with id {key}")
            stored = customer or conn.execute(_CUSTOMER_OF, {"id": key}).scalar()
            if not stored:
                raise InputError(f"business {key} has no stripe_customer_id: pass --customer")
            pairs = [(key, stored)]
        for business, cus in pairs:
            ensure_connection(conn, business, "stripe", cus)
    for business, cus in pairs:
        click.echo(f"{business} -> stripe customer {cus}")
