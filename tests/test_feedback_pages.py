"""QR codes, scans and the hosted feedback pages over real loopback HTTP (uvicorn), and the
whole loop: a review request's link -> private feedback -> the journey stops, `explain`
tells it, and a low rating starts a feedback_received journey."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from journey_support import (
    REVIEW_URL,
    add_event,
    apply,
    journey_config,
    make_business,
    make_customer,
    rows,
    sequence,
)
from test_journey_execution import Scripted

from blippsync.config import load_config
from blippsync.database import Database
from blippsync.feedback import record_scan
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.qr_codes import create_code
from blippsync.techs import add_tech


@pytest.fixture
def server(tmp_path: Path, database_url: str, db: Database) -> Iterator[str]:
    config = load_config(support.write_config(tmp_path / "c.toml", database_url, "http://x"),
                         environ={})
    with support.serving(config, db) as url:
        yield url


def make_code(db: Database, tmp_path: Path, *, tech: bool = True) -> tuple[uuid.UUID, str, Any]:
    business = make_business(db, name="Sparkle Plumbing Co")
    tech_id = add_tech(db, business, "Maria Lopez", "maria@sparkle.test") if tech else None
    created = create_code(db, business, "Truck 3", "https://sync.example.com", tmp_path / "qr",
                          tech_id)
    return business, created.code, tech_id


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found, "the form carries an anti-forgery token"
    return found.group(1)


def _count(db: Database, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_qr_create_writes_png_and_svg_pointing_at_the_public_url(db: Database,
                                                                  tmp_path: Path) -> None:
    business = make_business(db)
    created = create_code(db, business, "Front desk", "https://sync.example.com/", tmp_path)
    assert re.fullmatch(r"[2-9a-hjkmnp-z]{8}", created.code)
    assert created.url == f"https://sync.example.com/q/{created.code}"
    import zxingcpp  # an independent decoder reads the printed code back
    from PIL import Image

    (decoded,) = zxingcpp.read_barcodes(Image.open(created.png))
    assert (decoded.text, decoded.format) == (created.url, zxingcpp.BarcodeFormat.QRCode)
    svg = created.svg.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and created.url in svg


def test_scan_counts_logs_the_technician_and_redirects(server: str, db: Database,
                                                       tmp_path: Path) -> None:
    business, code, tech = make_code(db, tmp_path)
    answer = httpx.get(f"{server}/q/{code}")
    assert answer.status_code == 303 and answer.headers["location"] == f"/q/{code}/feedback"
    assert httpx.head(f"{server}/q/{code}").status_code == 303  # link previewers: not counted
    assert _count(db, "SELECT scan_count FROM qr_codes WHERE code = :c", c=code) == 1
    (scan,) = rows(db, "SELECT business_id, tech_id, scanned_at FROM qr_scans")
    assert (scan.business_id, scan.tech_id) == (business, tech)
    page = httpx.get(f"{server}/q/{code}", follow_redirects=True)
    assert page.status_code == 200
    assert "Sparkle Plumbing Co" in page.text and "Maria Lopez" in page.text


def test_unknown_malformed_and_retired_codes_get_a_friendly_404(server: str, db: Database,
                                                                tmp_path: Path) -> None:
    business, code, _ = make_code(db, tmp_path)
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE qr_codes SET active = false WHERE code = :c"), {"c": code})
    for path in (f"/q/{code}", "/q/nosuchcode", "/q/%3Cscript%3E", f"/q/{code}/feedback",
                 "/f/not-a-real-token-123", "/f/x"):
        answer = httpx.get(server + path)
        assert answer.status_code == 404, path
        assert "text/html" in answer.headers["content-type"]
        assert "This link is not active" in answer.text and "Traceback" not in answer.text
    assert _count(db, "SELECT count(*) FROM qr_scans") == 0


def test_a_flood_of_scans_is_limited_per_code_and_client(server: str, db: Database,
                                                         tmp_path: Path) -> None:
    _, code, _ = make_code(db, tmp_path)
    with httpx.Client() as client:
        answers = [client.get(f"{server}/q/{code}").status_code for _ in range(70)]
    assert answers[:60] == [303] * 60  # still sent on to the page, but counted only 3 times
    assert set(answers[60:]) == {429}
    assert _count(db, "SELECT scan_count FROM qr_codes WHERE code = :c", c=code) == 3
    assert _count(db, "SELECT count(*) FROM qr_scans") == 3
    metrics = httpx.get(f"{server}/metrics").text
    assert 'blippsync_qr_scans_total{outcome="counted"} 3.0' in metrics
    assert 'blippsync_qr_scans_total{outcome="not_counted"} 57.0' in metrics


def test_concurrent_scans_are_counted_atomically(db: Database, tmp_path: Path) -> None:
    _, code, _ = make_code(db, tmp_path)
    threads = [threading.Thread(target=record_scan, args=(db, code)) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count(db, "SELECT scan_count FROM qr_codes WHERE code = :c", c=code) == 24
    assert _count(db, "SELECT count(*) FROM qr_scans") == 24


def test_forged_posts_are_refused_and_store_nothing(server: str, db: Database,
                                                    tmp_path: Path) -> None:
    _, code, _ = make_code(db, tmp_path)
    url = f"{server}/q/{code}/feedback"
    assert httpx.post(url, data={"rating": "1"}).status_code == 403  # no token, no cookie
    with httpx.Client() as victim, httpx.Client() as attacker:
        token = _csrf(attacker.get(url).text)  # the attacker's own token...
        victim.get(url)
        # ...does not match the victim's cookie
        assert victim.post(url, data={"rating": "1", "csrf_token": token}).status_code == 403
    assert _count(db, "SELECT count(*) FROM private_feedback") == 0
    assert 'blippsync_feedback_posts_total{outcome="forged"} 2.0' in \
        httpx.get(f"{server}/metrics").text


@pytest.mark.parametrize("rating", [1, 5])
def test_every_rating_is_offered_the_public_review_link(server: str, db: Database,
                                                        tmp_path: Path, rating: int) -> None:
    business, code, tech = make_code(db, tmp_path)
    with httpx.Client(base_url=server) as client:
        form = client.get(f"/q/{code}/feedback")
        assert f'href="{REVIEW_URL}"' in form.text  # offered before any rating, too
        done = client.post(f"/q/{code}/feedback", data={
            "rating": str(rating), "comment": "  Fixed the leak <b>fast</b>  ",
            "csrf_token": _csrf(form.text)})
        assert done.status_code == 303 and done.headers["location"] == f"/q/{code}/thanks"
        thanks = client.get(done.headers["location"])
    assert "Thank you" in thanks.text and f'href="{REVIEW_URL}"' in thanks.text
    (row,) = rows(db, "SELECT business_id, rating, feedback, source, tech_id, customer_id "
                      "FROM private_feedback")
    assert (row.business_id, row.rating, row.source, row.tech_id, row.customer_id) == \
        (business, rating, "qr", tech, None)
    assert row.feedback == "Fixed the leak <b>fast</b>"
    events = rows(db, "SELECT source, event_type, payload FROM trigger_events")
    if rating == 1:  # a low rating is also routed to the business
        (event,) = events
        assert (event.source, event.event_type) == ("feedback", "feedback_received")
        assert event.payload["rating"] == 1 and event.payload["tech_name"] == "Maria Lopez"
    else:
        assert events == []


def test_a_missing_rating_is_asked_again_keeping_the_comment(server: str, db: Database,
                                                            tmp_path: Path) -> None:
    _, code, _ = make_code(db, tmp_path)
    with httpx.Client(base_url=server) as client:
        form = client.get(f"/q/{code}/feedback")
        again = client.post(f"/q/{code}/feedback", data={
            "comment": "on time", "csrf_token": _csrf(form.text)})
    assert again.status_code == 422
    assert "Please choose a rating" in again.text and ">on time</textarea>" in again.text


def test_feedback_on_a_review_request_stops_its_journey_and_shows_in_explain(
        server: str, db: Database, database_url: str, tmp_path: Path) -> None:
    business = make_business(db, name="Sparkle Plumbing Co")
    with db.begin() as conn:  # no configured URL: the place id gives the review link
        conn.execute(sa.text("UPDATE businesses SET google_review_url = NULL, "
                             "google_place_id = 'ChIJN1t_tDeuEmsRUsoyG83frY4' WHERE id = :b"),
                     {"b": business})
    apply(db, business,
          sequence(steps=[{"type": "email", "purpose": "review", "subject": "How did we do?",
                           "body": "{{ feedback_link }} or {{ review_link }}"},
                          {"type": "email", "delay_minutes": 60 * 24, "purpose": "review",
                           "subject": "Reminder", "body": "{{ review_link }}"}]),
          sequence("Sorry", trigger_source="feedback", trigger_event_type="feedback_received",
                   steps=[{"type": "email", "purpose": "follow_up", "subject": "We're sorry",
                           "body": "The owner will call you."}]))
    customer = make_customer(db, business, name="Ada Lovelace")
    add_event(db, business, customer)
    config = journey_config(tmp_path, database_url, channels__email="scripted",
                            channels__sms="scripted", journeys__review_link_base_url=server,
                            journeys__email_hours="00:00-24:00")
    channel = Scripted()
    now = datetime.now(UTC)  # the page stamps feedback with the real clock
    assert route_events(db, config, now=now).enrolled == 1
    execute_due_steps(db, config, {"scripted": channel}, now=now)
    (ask,) = channel.sent
    feedback_link = re.search(r"(http://\S+/f/\S+) or", ask.body).group(1)
    with httpx.Client() as client:
        form = client.get(feedback_link)
        assert "Hi Ada" in form.text and "Sparkle Plumbing Co" in form.text
        token = feedback_link.rsplit("/", 1)[1]
        assert f'href="/r/{token}"' in form.text
        done = client.post(feedback_link, data={"rating": "2", "comment": "Late, messy",
                                                "csrf_token": _csrf(form.text)})
        thanks = client.get(server + done.headers["location"])
        assert f'href="/r/{token}"' in thanks.text
        google = client.get(f"{server}/r/{token}")
    assert google.headers["location"] == \
        "https://search.google.com/local/writereview?placeid=ChIJN1t_tDeuEmsRUsoyG83frY4"

    (fb,) = rows(db, "SELECT rating, source, customer_id, review_request_id FROM private_feedback")
    assert (fb.rating, fb.source, fb.customer_id) == (2, "email", customer)
    later = datetime.now(UTC) + timedelta(days=2)
    assert route_events(db, config, now=later).enrolled == 1  # the "Sorry" journey
    execute_due_steps(db, config, {"scripted": channel}, now=later)
    assert [m.subject for m in channel.sent] == ["How did we do?", "We're sorry"]  # no reminder
    statuses = {r.name: (r.status, r.status_reason) for r in rows(
        db, "SELECT s.name, e.status, e.status_reason FROM customer_enrollments e "
            "JOIN sequences s ON s.id = e.sequence_id")}
    assert statuses["Thanks and review"] == ("stopped", "private_feedback")
    story = "\n".join(story_lines(explain_customer(db, str(customer))))
    assert "feedback" in story and "2 of 5 stars" in story and "Late, messy" in story
    assert "enrollment in 'Thanks and review': stopped (private_feedback)" in story


def test_cli_techs_and_qr(cli_env: dict[str, str], db: Database, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from blippsync.cli import cli

    business = str(make_business(db, name="Sparkle Plumbing Co"))
    monkeypatch.chdir(tmp_path)
    env = {**cli_env, "BLIPPSYNC_HTTP_PUBLIC_BASE_URL": "https://sync.example.com"}

    def run(*args: str, environ: dict[str, str] = env) -> Any:
        return CliRunner().invoke(cli, list(args), env=environ, obj={})

    tech = run("techs", "add", "--business", business, "--name", "Maria Lopez").output.strip()
    uuid.UUID(tech)
    made = run("qr", "create", "--business", business, "--tech", tech, "--label", "Truck 3",
               "--out", str(tmp_path / "codes"), "--json")
    assert made.exit_code == 0, made.output
    assert sorted(p.suffix for p in (tmp_path / "codes").iterdir()) == [".png", ".svg"]
    listing = run("qr", "list", "--business", business)
    assert "Truck 3" in listing.output and "Maria Lopez" in listing.output
    assert run("techs", "deactivate", "--business", business, tech).exit_code == 0
    assert "Maria Lopez" not in run("techs", "list", "--business", business).output
    assert "Maria Lopez" in run("techs", "list", "--business", business, "--all").output
    refused = run("qr", "create", "--business", business, "--tech", tech, "--label", "x")
    assert refused.exit_code == 1 and "deactivated" in refused.output
    assert "Traceback" not in refused.output
    no_base = run("qr", "create", "--business", business, "--label", "x", environ=cli_env)
    assert no_base.exit_code == 1 and "http.public_base_url" in no_base.output
    bad = run("techs", "list", "--business", "not-a-uuid")
    assert bad.exit_code == 1 and "not an id" in bad.output


def test_review_links_never_redirect_off_google(server: str, db: Database) -> None:
    from blippsync.businesses import add_business
    from blippsync.errors import InputError

    with pytest.raises(InputError, match="not an https link on a Google host"):
        add_business(db, name="Evil Co", owner_email="o@evil.test", timezone="UTC",
                     google_review_url="https://evil.example/review")
    business = make_business(db)
    with db.begin() as conn:  # the web app can still write anything into the row
        conn.execute(sa.text("UPDATE businesses SET google_review_url = 'https://evil.example/x'"
                             " WHERE id = :b"), {"b": business})
        conn.execute(sa.text("INSERT INTO review_requests (business_id, channel, status, "
                             "review_token, sent_at) VALUES (:b, 'sms', 'sent', "
                             "'tok_evil_123456', now())"), {"b": business})
    answer = httpx.get(f"{server}/r/tok_evil_123456")
    assert answer.status_code == 200 and "no review page" in answer.text
    page = httpx.get(f"{server}/f/tok_evil_123456")
    assert "evil.example" not in page.text and "Write a Google review" not in page.text
