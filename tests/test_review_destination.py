"""The public review link: a configured URL only when https on a Google host, else one
derived from the place id; and the pages' bounded rate limiter."""

from __future__ import annotations

import pytest

from blippsync.google_review import is_google_review_url, problem_with, review_url
from blippsync.http.rate_limit import RateLimiter

PLACE = "ChIJN1t_tDeuEmsRUsoyG83frY4"  # the place id in Google's own Place ID examples


@pytest.mark.parametrize("url", [
    "https://g.page/r/CabcdEFGhijk/review",
    "https://search.google.com/local/writereview?placeid=ChIJN1t_tDeuEmsRUsoyG83frY4",
    "https://www.google.com/maps/place/?q=place_id:ChIJN1t_tDeuEmsRUsoyG83frY4",
    "https://www.google.co.uk/search?q=acme#lrd=0x0:0x0,3",
    "https://maps.app.goo.gl/iyoHNmjmG9kvisSs5",
])
def test_google_review_urls_are_accepted(url: str) -> None:
    assert is_google_review_url(url)
    assert review_url(url, None) == url


@pytest.mark.parametrize("url", [
    "http://g.page/r/CabcdEFGhijk/review",            # not https
    "https://google.com.evil.example/review",         # Google's name inside another domain
    "https://evilgoogle.com/review",
    "https://google.com@evil.example/review",         # credentials trick
    "https://g.page:8443/r/x/review",                 # odd port
    "javascript:alert(1)",
    "https://example.com/review",
])
def test_other_urls_are_refused_and_the_place_id_used_instead(url: str) -> None:
    assert not is_google_review_url(url)
    assert review_url(url, None) is None
    assert review_url(url, PLACE) == \
        f"https://search.google.com/local/writereview?placeid={PLACE}"
    assert "not an https link on a Google host" in (problem_with(url, None) or "")


def test_place_id_is_checked_before_it_is_used() -> None:
    assert review_url(None, "ChIJ<script>") is None
    assert review_url(None, "") is None
    assert problem_with(None, "x y") is not None


def test_rate_limiter_windows_and_bounded_memory() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, max_keys=100, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    now[0] = 10.0
    assert limiter.allow("a")  # a new window
    for i in range(10_000):  # a flood of distinct clients
        limiter.allow(f"client-{i}")
    assert len(limiter) == 100
