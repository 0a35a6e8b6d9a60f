"""Which column holds which field: header aliases and the optional column mapping.

Headers are compared case-, space- and punctuation-insensitively ("E-mail",
"email", "EMAIL ADDRESS" and "Email Address" all match). A field may match several
columns (Mobile and Phone); each row then takes the first non-empty one, in the
priority order of the alias list below.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from blippsync.errors import ConfigError

# Fields a mapping may name; city/state/zip join the address. The aliases are the headers
# of the common exports (docs/csv.md lists them by tool): QuickBooks "Customer Contact
# List", Jobber "Clients", Google Contacts, Outlook, Housecall Pro, ServiceTitan, Square,
# and the French, Spanish and German spellings Excel users type. Accents are ignored.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("externalid", "customerid", "clientid", "id", "customernumber",
                    "clientnumber", "accountnumber", "customerno", "jid", "squarecustomerid",
                    "referenceid", "numeroclient", "kundennummer", "numerodecliente"),
    "name": ("name", "fullname", "customername", "clientname", "customer", "client",
             "displayname", "contactname", "customerfullname", "nomcomplet",
             "nombrecompleto", "vollstandigername"),
    # the name of last resort: a row with neither a name nor first/last names
    "company": ("companyname", "company", "organizationname", "organization1name",
                "entreprise", "societe", "empresa", "firma"),
    "first_name": ("firstname", "givenname", "first", "prenom", "nombre", "vorname"),
    "last_name": ("lastname", "surname", "familyname", "last", "nom", "nomdefamille",
                  "apellido", "apellidos", "nachname", "familienname"),
    "email": ("email", "emailaddress", "emails", "primaryemail", "emailaddresses", "mail",
              "clientemail", "customeremail", "contactemail", "email1value", "email2value",
              "email3value", "email2address", "email3address", "courriel", "adresseemail",
              "adressecourriel", "correo", "correoelectronico", "emailadresse"),
    # review requests go out by SMS: numbers a file calls mobile are kept apart from others
    "mobile": ("mobile", "cell", "mobilephone", "cellphone", "mobilenumber", "cellnumber",
               "mobilephonenumbers", "mobilephonenumber", "cellphonenumber",
               "telephoneportable", "portable", "telephonemobile", "movil", "telefonomovil",
               "celular", "handy", "mobiltelefon", "mobilnummer", "handynummer"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mainphone", "primaryphone",
              "phones", "phonenumbers", "mainphonenumbers", "homephone", "workphone",
              "businessphone", "homenumber", "worknumber", "homephonenumbers",
              "workphonenumbers", "otherphonenumbers", "otherphone", "companymainphone",
              "businessphone2", "homephone2", "phone1value", "phone2value", "phone3value",
              "clientphone", "customerphone", "contactphone", "telephonefixe", "telefono",
              "telefon", "telefonnummer"),
    "address": ("address", "streetaddress", "street", "address1", "addressline1",
                "streetaddress1", "billingaddress", "billingstreet", "billingstreet1",
                "serviceaddress", "servicestreet", "servicestreet1", "billaddress",
                "address1street", "homestreet", "businessstreet", "customeraddress",
                "adresse", "direccion", "strasse", "anschrift"),
    "city": ("city", "town", "billingcity", "servicecity", "address1city", "homecity",
             "businesscity", "ville", "ciudad", "ort", "stadt"),
    "state": ("state", "province", "stateprovince", "billingstate", "servicestate",
              "serviceprovince", "address1region", "homestate", "businessstate", "provincia",
              "bundesland"),
    "zip": ("zip", "zipcode", "postalcode", "postcode", "billingzip", "billingzipcode",
            "servicezip", "servicezipcode", "servicepostalcode", "address1postalcode",
            "homepostalcode", "businesspostalcode", "codepostal", "codigopostal", "plz",
            "postleitzahl"),
    "tags": ("tags", "tag", "labels", "groupmembership", "customertags", "categories",
             "groups", "etiquettes",
             "etiquetas"),
    "completed_at": ("completedat", "jobdate", "servicedate", "datecompleted",
                     "completeddate", "completiondate", "jobcompleted", "jobcompletedat",
                     "dateofservice"),
}
FIELDS = tuple(ALIASES)
CONTACT_FIELDS = ("name", "first_name", "last_name", "company", "email", "phone", "mobile")
# Google Contacts pairs each number with its kind: "Phone 1 - Value" / "Phone 1 - Type"
# (older exports) or "Phone 1 - Label" (newer); a pair typed Mobile is a mobile number.
_TYPED_PHONE = re.compile(r"^phone(\d+)value$")
MOBILE_WORDS = ("mobile", "cell", "portable", "handy", "movil", "celular")


def normalize_header(header: str) -> str:
    """'E-mail Address ' -> 'emailaddress' (also drops a stray BOM); '#' reads as
    'number', so 'Customer #' is an id, not the 'Customer' name column; accents go
    ('Téléphone' = 'telephone', 'Straße' = 'strasse')."""
    text = unicodedata.normalize("NFKD", header.casefold().replace("#", "number"))
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


@dataclass(frozen=True)
class ColumnPlan:
    """For each field, the column indexes to read, best first; `headers` for messages."""

    headers: tuple[str, ...]
    indexes: Mapping[str, tuple[int, ...]]
    phone_types: Mapping[int, int] = field(default_factory=dict)  # phone col -> its type col

    @property
    def usable(self) -> bool:
        return any(self.indexes.get(f) for f in CONTACT_FIELDS)

    @property
    def contactable(self) -> bool:
        """Whether any column can give an email or a phone number."""
        return any(self.indexes.get(f) for f in ("email", "phone", "mobile"))

    def describe(self) -> dict[str, list[str]]:
        """field -> the headers it is read from, for logs and dry-run reports."""
        return {f: [self.headers[i] for i in ix] for f, ix in self.indexes.items() if ix}

    def ignored(self) -> list[str]:
        """The non-empty headers no field reads."""
        used = {i for ix in self.indexes.values() for i in ix} | set(self.phone_types.values())
        return [h for i, h in enumerate(self.headers) if i not in used and h.strip()]


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
    return ColumnPlan(tuple(headers), indexes, _phone_types(normalized, indexes)), missing


def _phone_types(normalized: list[str], indexes: Mapping[str, tuple[int, ...]]
                 ) -> dict[int, int]:
    where = {n: i for i, n in enumerate(normalized)}
    pairs = {}
    for i in indexes.get("phone", ()):
        if (match := _TYPED_PHONE.match(normalized[i])) is not None:
            for suffix in ("type", "label"):
                if (kind := where.get(f"phone{match.group(1)}{suffix}")) is not None:
                    pairs[i] = kind
                    break
    return pairs
