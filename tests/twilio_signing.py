"""Twilio's request signature, written for the tests from Twilio's documentation (not from
our production code), and proven against the examples Twilio publishes.

The documented algorithm (https://www.twilio.com/docs/usage/security#validating-requests):
take the full URL Twilio requested (query string included); sort the POST fields by name;
append each name then its value, no separators; HMAC-SHA1 that string with the auth token
as key; Base64-encode the digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

# Twilio's published examples (TwilioDevEd/api-snippets, security/signature_validation
# for twilio-node 2.x and 3.x): auth token 12345, this URL and these fields.
PUBLISHED_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PUBLISHED_TOKEN = "12345"
PUBLISHED_EXAMPLES = [
    ({"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
      "From": "+14158675309", "To": "+18005551212"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ({"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310", "Digits": "1234",
      "From": "+14158675310", "To": "+18005551212"}, "GvWf1cFY/Q7PnoempGyD5oXAezc="),
]


def sign(url: str, fields: Mapping[str, str], auth_token: str) -> str:
    data = url
    for name in sorted(fields):
        data += name + fields[name]
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")
