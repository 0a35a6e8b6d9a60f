"""Writes the Jobber cassettes (run `python tests/cassettes/jobber/build.py` to regenerate).

We hold no Jobber account to record against, so these interactions are built by hand
from the documented shapes (api/jobber.md; the official Rails template's fixtures for
the cost extension, THROTTLED error, JWT and `MQ`/`Mg` page cursors; the text/plain 401
seen by n8n-io/n8n#30345; the disconnect message from DOC-ERR). Request bodies are written
here from the documented schema (never taken from the connector's query module), matched
by operation name and variables; Authorization is already filtered as a recording would
leave it. tests/test_jobber_cassettes.py also checks every field the connector asks for
against the documented schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
URL = "https://api.getjobber.com/api/graphql"
VERSION = "2025-04-16"
WARNING = ("Support for API version 2025-04-16 is scheduled to stop on 2026-10-16. "
           "Please upgrade to a newer version.")
ACCOUNT = "Z2lkOi8vSm9iYmVyL0FjY291bnQvMjQ4NjkzNA=="
SINCE = "2025-06-03T00:00:00+00:00"


# The documents as a recording would show them, written from api/jobber.md's schema notes.
CLIENT = ("id name companyName isArchived updatedAt receivesReviewRequests "
          "emails { address primary } phones { number primary smsAllowed description } "
          "billingAddress { street1 street2 city province postalCode country }")
CLIENTS = ("query Clients($first: Int!, $after: String, $filter: ClientFilterAttributes) { "
           "clients(first: $first, after: $after, filter: $filter) { nodes { " + CLIENT +
           " } pageInfo { endCursor hasNextPage } } }")
COMPLETED_JOBS = ("query CompletedJobs($first: Int!, $after: String, $filter: "
                  "JobFilterAttributes) { jobs(first: $first, after: $after, filter: $filter) "
                  "{ nodes { id jobNumber title jobStatus completedAt client { id } } "
                  "pageInfo { endCursor hasNextPage } } }")
PAID_INVOICES = ("query PaidInvoices($first: Int!, $after: String, $filter: "
                 "InvoiceFilterAttributes) { invoices(first: $first, after: $after, "
                 "filter: $filter) { nodes { id invoiceNumber invoiceStatus receivedDate "
                 "updatedAt amounts { total } client { id } } "
                 "pageInfo { endCursor hasNextPage } } }")
ACCOUNT_QUERY = "query Account { account { id name } }"
APP_DISCONNECT = ("mutation Disconnect { appDisconnect { app { name author } "
                  "userErrors { message } } }")


def cost(requested: int, actual: int, available: int) -> dict[str, Any]:
    return {"requestedQueryCost": requested, "actualQueryCost": actual,
            "throttleStatus": {"maximumAvailable": 10000, "currentlyAvailable": available,
                               "restoreRate": 500}}


def extensions(requested: int, actual: int, available: int, warn: bool = True) -> dict[str, Any]:
    versioning = {"version": VERSION, **({"warning": WARNING} if warn else {})}
    return {"cost": cost(requested, actual, available), "versioning": versioning}


def client(n: int, **over: Any) -> dict[str, Any]:
    import base64
    node = {"id": base64.b64encode(f"gid://Jobber/Client/{145189326 + n}".encode()).decode(),
            "name": f"Client {n}", "companyName": None, "isArchived": False,
            "updatedAt": f"2025-06-0{n}T16:31:36-06:00", "receivesReviewRequests": True,
            "emails": [{"address": f"client{n}@example.com", "primary": True}],
            "phones": [{"number": f"(555) 010-000{n}", "primary": True, "smsAllowed": True,
                        "description": "Main"}],
            "billingAddress": {"street1": f"{n} Elm St", "street2": None, "city": "Calgary",
                               "province": "AB", "postalCode": "T2P 1J9", "country": "Canada"}}
    node.update(over)
    return node


def request(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "uri": URL,
            "body": json.dumps({"query": query, "variables": variables}),
            "headers": {"Content-Type": ["application/json"], "Accept": ["application/json"],
                        "Authorization": ["<REDACTED>"], "X-JOBBER-GRAPHQL-VERSION": [VERSION]}}


def response(body: Any, status: int = 200, content_type: str = "application/json; charset=utf-8"
             ) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"status": {"code": status, "message": {200: "OK", 401: "Unauthorized"}[status]},
            "headers": {"Content-Type": [content_type], "Cache-Control": ["no-store"],
                        "X-Request-Id": ["0f6c1f0e-5b1a-4c83-9f3e-8a2b1c7d9e01"],
                        "Vary": ["Accept-Encoding"]},
            "body": {"string": text}}


def page(first: int, after: str | None, flt: Any) -> dict[str, Any]:
    return {"first": first, "after": after, "filter": flt}


def write(name: str, interactions: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    data = {"interactions": [{"request": q, "response": r} for q, r in interactions],
            "version": 1}
    (HERE / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, width=100))


def main() -> None:
    until = "2025-06-05T12:00:00+00:00"
    jobs_filter = {"completedAt": {"after": "2025-05-06T12:00:00+00:00", "before": until}}
    inv_filter = {"status": "paid", "updatedAt": {"after": "2025-05-06T12:00:00+00:00",
                                                   "before": until}}
    job = {"id": "Z2lkOi8vSm9iYmVyL0pvYi84ODQzMjE=", "jobNumber": 42, "title": "Spring cleanup",
           "jobStatus": "requires_invoicing", "completedAt": "2025-06-04T15:10:00-06:00",
           "client": {"id": client(1)["id"]}}
    invoice = {"id": "Z2lkOi8vSm9iYmVyL0ludm9pY2UvNTUxMjM=", "invoiceNumber": "1017",
               "invoiceStatus": "paid", "receivedDate": "2025-06-04T00:00:00-06:00",
               "updatedAt": "2025-06-04T18:02:11-06:00", "amounts": {"total": 240.0},
               "client": {"id": client(2)["id"]}}
    open_job = {**job, "id": "Z2lkOi8vSm9iYmVyL0pvYi84ODQzMjI=", "completedAt": None}
    write("full_pass", [
        (request(CLIENTS, page(2, None, None)),
         response({"data": {"clients": {"nodes": [client(1), client(2, isArchived=True,
                                                                     receivesReviewRequests=False)],
                                         "pageInfo": {"endCursor": "MQ", "hasNextPage": True}}},
                   "extensions": extensions(36, 36, 9964)})),
        (request(CLIENTS, page(2, "MQ", None)),
         response({"data": {"clients": {"nodes": [client(3, name="", companyName="Acme Ltd",
                                                         emails=[], phones=[])],
                                         "pageInfo": {"endCursor": "Mg", "hasNextPage": False}}},
                   "extensions": extensions(36, 19, 9945)})),
        (request(COMPLETED_JOBS, page(2, None, jobs_filter)),
         response({"data": {"jobs": {"nodes": [job, open_job],
                                     "pageInfo": {"endCursor": "MQ", "hasNextPage": False}}},
                   "extensions": extensions(14, 14, 9931)})),
        (request(PAID_INVOICES, page(2, None, inv_filter)),
         response({"data": {"invoices": {"nodes": [invoice],
                                         "pageInfo": {"endCursor": "MQ", "hasNextPage": False}}},
                   "extensions": extensions(16, 9, 9922)})),
    ])
    throttled = {"errors": [{"message": "Throttled", "extensions": {
        "code": "THROTTLED",
        "documentation": "https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits"}}],
        "extensions": {"cost": cost(1802, 0, 1300), "versioning": {"version": VERSION}}}
    write("throttled", [
        (request(CLIENTS, page(100, None, None)), response(throttled)),
        (request(CLIENTS, page(100, None, None)),
         response({"data": {"clients": {"nodes": [client(1)],
                                         "pageInfo": {"endCursor": "MQ", "hasNextPage": False}}},
                   "extensions": extensions(1802, 19, 1800, warn=False)})),
    ])
    write("expired_token", [
        (request(CLIENTS, page(100, None, None)),
         response("Access token expired", 401, "text/plain; charset=utf-8")),
        (request(CLIENTS, page(100, None, None)),
         response({"data": {"clients": {"nodes": [client(1)],
                                         "pageInfo": {"endCursor": "MQ", "hasNextPage": False}}},
                   "extensions": extensions(1802, 19, 9981, warn=False)})),
    ])
    hidden = {"errors": [{"message": "The field jobs on an object of type Query was hidden due "
                                     "to permissions", "locations": [{"line": 3, "column": 3}],
                          "path": ["jobs"]}], "data": None,
              "extensions": extensions(602, 0, 9398, warn=False)}
    write("hidden_field", [(request(COMPLETED_JOBS, page(100, None, jobs_filter)),
                            response(hidden))])
    write("disconnected", [(request(ACCOUNT_QUERY, {}), response(
        {"message": "User has disconnected this app from their account. Please delete this "
                    "token"}, 401))])
    write("app_disconnect", [(request(APP_DISCONNECT, {}), response(
        {"data": {"appDisconnect": {"app": {"name": "Blipp", "author": "Blipp Inc."},
                                    "userErrors": []}},
         "extensions": extensions(3, 3, 9997, warn=False)}))])


if __name__ == "__main__":
    main()
