"""Several contacts in one field, as sources write them: every one found, none invented."""

from __future__ import annotations

import pytest

from blippsync.normalize import MOBILE, OTHER, PRIMARY, normalize_email, split_emails, split_phones


@pytest.mark.parametrize("cell,emails", [
    ("a@x.com", ["a@x.com"]),
    ("grace@navy.example, billing@navy.example", ["grace@navy.example", "billing@navy.example"]),
    ("a@x.com; b@y.com\nc@z.com", ["a@x.com", "b@y.com", "c@z.com"]),
    ("Mary Smith <Mary@Example.com>", ["mary@example.com"]),
    ("Smith, Mary <mary@x.com>; Bob <bob@y.com>", ["mary@x.com", "bob@y.com"]),
    ("mailto:x@y.com", ["x@y.com"]),
    ("Email: a@b.com", ["a@b.com"]),
    ("a@x.com, A@X.COM", ["a@x.com"]),
    ("o'brien@example.ie", ["o'brien@example.ie"]),
])
def test_every_address_in_a_cell(cell: str, emails: list[str]) -> None:
    assert split_emails(cell) == (emails, [])


@pytest.mark.parametrize("cell,why", [
    ("jo..hn@example.com", "two periods in a row"),
    (".john@example.com", "cannot start with a period"),
    ("john@localhost", "should have a period"),
    ("not-an-email", "no @"),
])
def test_invalid_addresses_say_why(cell: str, why: str) -> None:
    found, (problem,) = split_emails(cell)
    assert found == [] and why in problem.reason and problem.value == cell


def test_a_valid_address_beside_an_invalid_one_is_kept() -> None:
    found, (problem,) = split_emails("good@x.com, bad..one@x.com")
    assert found == ["good@x.com"] and "bad..one" in problem.value


def test_the_fast_path_agrees_with_the_validator() -> None:
    # the regex fast path must accept only what email-validator accepts
    for address in ("a.b-c+d@sub.example.co.uk", "x_y%z@example.org", "user@xn--bcher-kva.example"):
        assert normalize_email(address)[0] == address
    assert normalize_email("a@b.local")[0] is None  # a reserved name


@pytest.mark.parametrize("cell,numbers", [
    ("(617) 555-0142", [("(617) 555-0142", PRIMARY)]),
    ("Phone: (617) 555-0142 Mobile: (617) 555-0143",
     [("(617) 555-0142", PRIMARY), ("(617) 555-0143", MOBILE)]),
    ("617-555-0142, 617-555-0143", [("617-555-0142", PRIMARY), ("617-555-0143", OTHER)]),
    ("Home: 212-555-0101; Cell: 212 555 0102",
     [("212-555-0101", PRIMARY), ("212 555 0102", MOBILE)]),
    ("+1 512-555-0123 ::: +1 512-555-0124", [("+1 512-555-0123", PRIMARY),
                                             ("+1 512-555-0124", OTHER)]),
    ("555-201-0101 ext. 12", [("555-201-0101 ext. 12", PRIMARY)]),
    ("Fax: 212-555-0100", [("212-555-0100", "fax")]),
    ("030/1234567", [("030/1234567", PRIMARY)]),  # a German area code, not two numbers
    ("617-555-0142 / 617-555-0143", [("617-555-0142", PRIMARY), ("617-555-0143", OTHER)]),
    ("+33 6 12 34 56 78", [("+33 6 12 34 56 78", PRIMARY)]),
])
def test_every_number_in_a_cell_with_its_kind(cell: str, numbers: list) -> None:
    assert split_phones(cell) == numbers


def test_a_cell_the_source_calls_mobile_holds_mobiles() -> None:
    assert split_phones("512-555-0123, 512-555-0124", MOBILE) == [
        ("512-555-0123", MOBILE), ("512-555-0124", MOBILE)]
