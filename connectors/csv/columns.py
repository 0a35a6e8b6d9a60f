"""Which column holds which field: header aliases and the optional column mapping.

Headers are compared case-, space- and punctuation-insensitively ("E-mail",
"email", "EMAIL ADDRESS" and "Email Address" all match). A field may match several
columns (Mobile and Phone); each row then takes the first non-empty one, in the
priority order of the alias list below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blippsync.errors import ConfigError

# Fields a mapping may name; city/state/zip/country join the address.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("externalid", "customerid", "clientid", "id", "customernumber",
                    "clientnumber", "accountnumber", "customerno", "jid"),
    "name": ("name", "fullname", "customername", "clientname", "customer", "client",
             "displayname", "contactname", "customerfullname"),
    "first_name": ("firstname", "givenname", "first"),
    "last_name": ("lastname", "surname", "familyname", "last"),
    "email": ("email", "emailaddress", "emails", "primaryemail", "emailaddresses", "mail",
              "clientemail", "customeremail", "contactemail"),
    # Mobile first: review requests go out by SMS, and a row with both numbers falls back
    # to the landline only when the mobile cell is empty.
    "phone": ("mobile", "cell", "mobilephone", "cellphone", "mobilenumber", "cellnumber",
              "mobilephonenumbers", "phone", "phonenumber", "telephone", "tel", "mainphone",
              "primaryphone", "phones", "phonenumbers", "mainphonenumbers", "homephone",
              "workphone",
              "clientphone", "customerphone", "contactphone"),
    "address": ("address", "streetaddress", "street", "address1", "addressline1",
                "streetaddress1", "billingaddress", "billingstreet", "billingstreet1",
                "serviceaddress", "servicestreet", "servicestreet1"),
    "city": ("city", "town", "billingcity", "servicecity"),
    "state": ("state", "province", "stateprovince", "billingstate", "servicestate",
              "serviceprovince"),
    "zip": ("zip", "zipcode", "postalcode", "postcode", "billingzip", "billingzipcode",
            "servicezip", "servicezipcode", "servicepostalcode"),
    "tags": ("tags", "tag", "labels"),
    "completed_at": ("completedat", "jobdate", "servicedate", "datecompleted",
                     "completeddate", "completiondate", "jobcompleted", "jobcompletedat",
                     "dateofservice"),
}
FIELDS = tuple(ALIASES)
CONTACT_FIELDS = ("name", "first_name", "last_name", "email", "phone")


def normalize_header(header: str) -> str:
    """'E-mail Address ' -> 'emailaddress' (also drops a stray BOM); '#' reads as
    'number', so 'Customer #' is an id, not the 'Customer' name column."""
    return "".join(ch for ch in header.casefold().replace("#", "number") if ch.isalnum())


@dataclass(frozen=True)
class ColumnPlan:
    """For each field, the column indexes to read, best first; `headers` for messages."""

    headers: tuple[str, ...]
    indexes: Mapping[str, tuple[int, ...]]

    @property
    def usable(self) -> bool:
        return any(self.indexes.get(f) for f in CONTACT_FIELDS)

    def describe(self) -> dict[str, list[str]]:
        """field -> the headers it is read from, for logs and dry-run reports."""
        return {f: [self.headers[i] for i in ix] for f, ix in self.indexes.items() if ix}


def check_mapping(mapping: Mapping[str, str]) -> None:
    for field_name, header in mapping.items():
        if field_name not in ALIASES:
            raise ConfigError(f"csv columns: unknown field {field_name!r} "
                              f"(fields: {', '.join(FIELDS)})")
        if not isinstance(header, str) or not normalize_header(header):
            raise ConfigError(f"csv columns.{field_name}: expected a column header, "
                              f"got {header!r}")


def plan_columns(headers: Sequence[str],
                 mapping: Mapping[str, str]) -> tuple[ColumnPlan, list[str]]:
    """Resolve fields to columns. Returns the plan and the mapped headers not found."""
    normalized = [normalize_header(h) for h in headers]
    indexes: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    claimed: set[int] = set()
    for field_name, header in mapping.items():
        wanted = normalize_header(header)
        found = tuple(i for i, n in enumerate(normalized) if n == wanted)
        if not found:
            missing.append(f"{field_name} -> {header!r}")
        indexes[field_name] = found
        claimed.update(found)
    for field_name, aliases in ALIASES.items():
        if field_name in mapping:
            continue
        rank = {alias: r for r, alias in enumerate(aliases)}
        found_ranked = sorted((rank[n], i) for i, n in enumerate(normalized)
                              if n in rank and i not in claimed)
        indexes[field_name] = tuple(i for _, i in found_ranked)
    return ColumnPlan(tuple(headers), indexes), missing
