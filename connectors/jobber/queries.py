"""The GraphQL documents the connector sends, each asking only for the fields we map.

Fields per item are the cost lever (a backfill of N clients costs about N x fields
points, refilled at 500 points/s), so nothing here is fetched "just in case".
"""

from __future__ import annotations

# One client: 18 points (6 scalars, 2 for emails, 4 for phones, 6 address lines, as counted
# by cost.query_cost); `emails` and `phones` are plain lists, not connections. A phone's
# `description` (Main, Mobile, Work...) is what says which number takes texts.
CLIENT_FIELDS = """
      id name companyName isArchived updatedAt receivesReviewRequests
      emails { address primary }
      phones { number primary smsAllowed description }
      billingAddress { street1 street2 city province postalCode country }
"""

JOB_FIELDS = """
      id jobNumber title jobStatus completedAt
      client { id }
"""

INVOICE_FIELDS = """
      id invoiceNumber invoiceStatus receivedDate updatedAt
      amounts { total }
      client { id }
"""

ACCOUNT = "query Account { account { id name } }"

CLIENTS = f"""
query Clients($first: Int!, $after: String, $filter: ClientFilterAttributes) {{
  clients(first: $first, after: $after, filter: $filter) {{
    nodes {{ {CLIENT_FIELDS} }}
    pageInfo {{ endCursor hasNextPage }}
  }}
}}"""

# Jobs cannot be filtered by updatedAt; completedAt is a real range filter.
COMPLETED_JOBS = f"""
query CompletedJobs($first: Int!, $after: String, $filter: JobFilterAttributes) {{
  jobs(first: $first, after: $after, filter: $filter) {{
    nodes {{ {JOB_FIELDS} }}
    pageInfo {{ endCursor hasNextPage }}
  }}
}}"""

PAID_INVOICES = f"""
query PaidInvoices($first: Int!, $after: String, $filter: InvoiceFilterAttributes) {{
  invoices(first: $first, after: $after, filter: $filter) {{
    nodes {{ {INVOICE_FIELDS} }}
    pageInfo {{ endCursor hasNextPage }}
  }}
}}"""

# Targeted fetches for webhooks: the client comes along whole so an event never names a
# customer we have not stored yet.
CLIENT = f"query Client($id: EncodedId!) {{ client(id: $id) {{ {CLIENT_FIELDS} }} }}"
JOB = (f"query Job($id: EncodedId!) {{ job(id: $id) {{ {JOB_FIELDS.replace('client { id }', '')}"
       f" client {{ {CLIENT_FIELDS} }} }} }}")
INVOICE = (f"query Invoice($id: EncodedId!) {{ invoice(id: $id) {{ "
           f"{INVOICE_FIELDS.replace('client { id }', '')} client {{ {CLIENT_FIELDS} }} }} }}")
VISIT = (f"query Visit($id: EncodedId!) {{ visit(id: $id) {{ id job {{ "
         f"{JOB_FIELDS.replace('client { id }', '')} client {{ {CLIENT_FIELDS} }} }} }} }}")

APP_DISCONNECT = """
mutation Disconnect { appDisconnect { app { name author } userErrors { message } } }"""
