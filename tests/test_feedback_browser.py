"""The feedback pages in a real headless Chromium: scan a code, rate with the keyboard-
and-mouse form, land on the thank-you page that offers the Google review link; a phone-
sized window keeps everything on screen. Screenshots land in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import test_feedback_pages as pages
from journey_support import REVIEW_URL, rows

from blippsync.database import Database

PHONE = (390, 844)
DESKTOP = (1280, 900)


site = pages.server  # the same fixture: the app under a real uvicorn


def _code(db: Database, tmp_path: Path) -> str:
    return pages.make_code(db, tmp_path)[1]


def test_scan_rate_and_thank_you_in_a_browser(browser: Any, screenshot: Any, site: str,
                                              db: Database, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    code = _code(db, tmp_path)
    browser.delete_all_cookies()
    browser.set_window_size(*PHONE)
    browser.get(f"{site}/q/{code}")
    assert browser.current_url == f"{site}/q/{code}/feedback"
    assert browser.title == "How did we do? · Sparkle Plumbing Co"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.find_element(By.CSS_SELECTOR, "legend").text == "Your rating"
    stars = browser.find_elements(By.CSS_SELECTOR, ".stars label")
    assert [s.get_attribute("textContent").strip()[-20:] for s in stars][0].endswith("poor")
    review = browser.find_element(By.LINK_TEXT, "Write a Google review")
    assert review.get_attribute("href") == REVIEW_URL
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], "no sideways scrolling on a phone"
    screenshot("phone-form")

    stars[3].click()  # four stars
    browser.find_element(By.ID, "comment").send_keys("Maria was quick and tidy.")
    colours = [s.value_of_css_property("color") for s in stars]
    assert len(set(colours[:4])) == 1 and colours[4] != colours[0]  # four filled, one not
    screenshot("phone-rated")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert browser.current_url == f"{site}/q/{code}/thanks"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Thank you for your feedback!"
    assert browser.find_element(By.LINK_TEXT, "Write a Google review").get_attribute("href") \
        == REVIEW_URL
    screenshot("phone-thanks")
    (row,) = rows(db, "SELECT rating, feedback, source FROM private_feedback")
    assert (row.rating, row.feedback, row.source) == (4, "Maria was quick and tidy.", "qr")


def test_form_needs_a_rating_and_retired_codes_are_friendly(browser: Any, screenshot: Any,
                                                            site: str, db: Database,
                                                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    code = _code(db, tmp_path)
    browser.delete_all_cookies()
    browser.set_window_size(*DESKTOP)
    browser.get(f"{site}/q/{code}/feedback")
    browser.find_element(By.ID, "comment").send_keys("No stars from me")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # no rating chosen
    assert browser.current_url == f"{site}/q/{code}/feedback"
    alert = browser.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert alert.text == "Please choose a rating from 1 to 5 stars."
    assert browser.find_element(By.ID, "comment").get_attribute("value") == "No stars from me"
    assert rows(db, "SELECT id FROM private_feedback") == []
    screenshot("desktop-form")
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE qr_codes SET active = false"))
    browser.get(f"{site}/q/{code}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "This link is not active"
    screenshot("retired-code")
