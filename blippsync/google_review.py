"""Where a customer goes to write a public review: the business's Google review form.

A configured `google_review_url` is used only when it is https on a Google host (a
redirector that sent customers "anywhere" would be an open redirect wearing the business's
name). Without one, the write-review URL is derived from `google_place_id`, in the form
Google documents for review links:
https://search.google.com/local/writereview?placeid=<place id>.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

WRITE_REVIEW_URL = "https://search.google.com/local/writereview?placeid={place_id}"
PLACE_ID = re.compile(r"^[A-Za-z0-9_-]{10,512}$")
# Google's own hosts a review link may point at: google.<tld> / google.co(m).<cc> and their
# subdomains (search., www., maps.), the g.page short links and goo.gl's maps links.
_GOOGLE_HOST = re.compile(
    r"^(?:[a-z0-9-]+\.)*google\.(?:com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$")
_SHORT_HOSTS = frozenset({"g.page", "maps.app.goo.gl", "goo.gl"})


def is_google_review_url(url: str) -> bool:
    """https, no credentials or odd port, and a Google host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (parts.scheme == "https" and not parts.username and not parts.password
            and port in (None, 443) and (host in _SHORT_HOSTS or bool(_GOOGLE_HOST.match(host))))


def review_url(google_review_url: str | None, google_place_id: str | None) -> str | None:
    """The URL to send raters to, or None when the business has no usable one."""
    if google_review_url and is_google_review_url(google_review_url):
        return google_review_url.strip()
    place = (google_place_id or "").strip()
    if PLACE_ID.match(place):
        return WRITE_REVIEW_URL.format(place_id=quote(place, safe=""))
    return None


def problem_with(google_review_url: str | None, google_place_id: str | None) -> str | None:
    """Why a business's configured values cannot be used (for CLI checks), else None."""
    if google_review_url and not is_google_review_url(google_review_url):
        return (f"google_review_url {google_review_url!r} is not an https link on a Google host "
                "(g.page, google.com, search.google.com...)")
    if google_place_id and not PLACE_ID.match(google_place_id.strip()):
        return f"google_place_id {google_place_id!r} does not look like a Google place id"
    return None
