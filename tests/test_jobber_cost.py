"""Jobber's cost rules, as documented, against two independent implementations: the fake's
(graphql-core, tests/fakes/jobber_cost.py) and the connector's own estimate, which sizes
its pages before Jobber has reported a real cost."""

from __future__ import annotations

import pytest
from fakes.jobber_cost import requested_cost

from connectors.jobber import queries
from connectors.jobber.cost import query_cost

# The documentation's worked examples (api/jobber.md, "Example costs").
QUOTE = ('query { quote(id: "q1") { id title quoteNumber quoteStatus createdAt message '
         "amounts { total } } }")
QUOTES_10 = "query { quotes(first: 10) { nodes { id title quoteNumber quoteStatus createdAt } } }"
QUOTES = "query { quotes { nodes { id title quoteNumber quoteStatus createdAt } } }"
NESTED = ("query { clients(first: 5) { nodes { id jobs(first: 3) { edges { node { id title } } } }"
          " } }")


@pytest.mark.parametrize(("query", "documented"), [
    (QUOTE, 7), (QUOTES_10, 50), (QUOTES, 500),
    (NESTED, 5 * (1 + 3 * 2)),  # nested connections multiply
])
def test_the_documented_examples(query: str, documented: int) -> None:
    assert requested_cost(query) == documented
    assert query_cost(query) == documented


@pytest.mark.parametrize("name", ["CLIENTS", "COMPLETED_JOBS", "PAID_INVOICES", "ACCOUNT",
                                  "CLIENT", "JOB", "INVOICE", "VISIT", "APP_DISCONNECT"])
@pytest.mark.parametrize("first", [1, 40, 100])
def test_the_connectors_estimate_agrees_with_the_documented_rules(name: str, first: int) -> None:
    query = getattr(queries, name)
    variables = {"first": first, "after": None, "filter": None, "id": "x"}
    assert query_cost(query, variables) == requested_cost(query, variables)


# --- every field the connector asks for exists in the documented schema --------------------

# api/jobber.md's schema notes (SCHEMA-2023 and the 2025 fields seen in the wild), by type.
DOCUMENTED = {
    "Query": {"clients": "ClientConnection", "jobs": "JobConnection",
              "invoices": "InvoiceConnection", "client": "Client", "job": "Job",
              "invoice": "Invoice", "visit": "Visit", "account": "Account"},
    "Mutation": {"appDisconnect": "AppDisconnectPayload"},
    "ClientConnection": {"nodes": "Client", "pageInfo": "PageInfo", "totalCount": None},
    "JobConnection": {"nodes": "Job", "pageInfo": "PageInfo", "totalCount": None},
    "InvoiceConnection": {"nodes": "Invoice", "pageInfo": "PageInfo", "totalCount": None},
    "PageInfo": dict.fromkeys(["endCursor", "hasNextPage", "hasPreviousPage", "startCursor"]),
    "Client": {**dict.fromkeys(["id", "firstName", "lastName", "companyName", "name", "title",
                                "isCompany", "isLead", "isArchived", "balance", "createdAt",
                                "updatedAt", "jobberWebUri", "receivesReviewRequests"]),
               "emails": "Email", "phones": "ClientPhoneNumber",
               "billingAddress": "ClientAddress"},
    "Email": dict.fromkeys(["id", "address", "description", "primary"]),
    "ClientPhoneNumber": dict.fromkeys(["id", "number", "friendly", "normalizedPhoneNumber",
                                        "description", "primary", "smsAllowed"]),
    "ClientAddress": dict.fromkeys(["street", "street1", "street2", "city", "province",
                                    "postalCode", "country", "latitude", "longitude"]),
    "Job": {**dict.fromkeys(["id", "jobNumber", "title", "jobStatus", "jobType", "completedAt",
                             "startAt", "endAt", "createdAt", "updatedAt", "total"]),
            "client": "Client"},
    "Visit": {**dict.fromkeys(["id", "completedAt", "isComplete", "visitStatus",
                               "isLastScheduledVisit"]), "job": "Job", "client": "Client"},
    "Invoice": {**dict.fromkeys(["id", "invoiceNumber", "invoiceStatus", "subject",
                                 "issuedDate", "dueDate", "receivedDate", "updatedAt"]),
                "client": "Client", "amounts": "InvoiceAmounts"},
    "InvoiceAmounts": dict.fromkeys(["total", "invoiceBalance", "paymentsTotal", "tipsTotal",
                                     "subtotal", "taxAmount", "depositAmount",
                                     "discountAmount", "nonTaxAmount"]),
    "Account": dict.fromkeys(["id", "name"]),
    "AppDisconnectPayload": {"app": "Application", "userErrors": "UserError"},
    "Application": dict.fromkeys(["name", "author"]),
    "UserError": dict.fromkeys(["message", "path"]),
}


def _undocumented(selection: object, type_name: str, path: str) -> list[str]:
    from graphql import FieldNode

    found = []
    for f in getattr(selection, "selections", ()):
        if not isinstance(f, FieldNode):
            continue
        name = f.name.value
        fields = DOCUMENTED[type_name]
        if name not in fields:
            found.append(f"{path}{type_name}.{name}")
            continue
        if f.selection_set is not None:
            child = fields[name]
            assert child is not None, f"{type_name}.{name} is a scalar"
            found += _undocumented(f.selection_set, child, f"{path}{name} > ")
    return found


@pytest.mark.parametrize("name", ["CLIENTS", "COMPLETED_JOBS", "PAID_INVOICES", "ACCOUNT",
                                  "CLIENT", "JOB", "INVOICE", "VISIT", "APP_DISCONNECT"])
def test_the_connector_asks_only_for_documented_fields(name: str) -> None:
    from graphql import OperationDefinitionNode, parse

    operation = next(d for d in parse(getattr(queries, name)).definitions
                     if isinstance(d, OperationDefinitionNode))
    root = "Mutation" if operation.operation.value == "mutation" else "Query"
    assert _undocumented(operation.selection_set, root, "") == []
