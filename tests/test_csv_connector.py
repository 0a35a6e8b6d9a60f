"""The csv connector on real files: exports as they come, and hostile ones.

Connectors are pure producers, so these tests need no database: they build a
ConnectorContext, run `sync` and compare the exact records.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from blippsync.connector import Connector, ConnectorContext
from blippsync.errors import ConfigError, InputError
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Note, Record, Rejected
from connectors.csv import (
    CHECKPOINT_ROWS,
    CsvConnector,
    derived_external_id,
    escape_formula,
    register_connectors,
)
from connectors.csv.dates import DateParser

DATA = Path(__file__).parent / "data" / "csv"
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def run(http: httpx.Client, path: Path, settings: Mapping[str, Any] | None = None,
        cursor: Mapping[str, Any] | None = None, full: bool = False) -> list[Record]:
    ctx = ConnectorContext(business_id=uuid.uuid4(), connection_id=None, account_id="",
                           settings=settings or {}, cursor=cursor, http=http,
                           log=logging.getLogger("test.csv"), full=full,
                           options={"path": path})
    return list(CsvConnector().sync(ctx))


def data_records(records: list[Record]) -> list[Record]:
    return [r for r in records if not isinstance(r, Checkpoint | Note)]


def write(tmp_path: Path, text: str, name: str = "in.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def ident(email: str = "", phone: str = "", name: str = "") -> str:
    return derived_external_id(email, phone, name)


def customer(external_id: str, line: str, **fields: Any) -> CustomerRecord:
    return CustomerRecord(external_id=external_id, location=line, **fields)


def job(external_id: str, day: str, at: datetime, raw: str, location: str) -> EventRecord:
    file_name, line = location.split(":")
    return EventRecord(event_type="job_completed",
                       dedupe_key=f"csv:{external_id}:job_completed:{day}",
                       customer_external_id=external_id, occurred_at=at,
                       payload={"date": raw, "file": file_name, "line": int(line)},
                       location=location)


# --- registration -------------------------------------------------------------------------

def test_registers_one_csv_connector() -> None:
    registered: list[Any] = []
    register_connectors(registered.append)
    (connector,) = registered
    assert isinstance(connector, Connector)
    assert (connector.name, connector.events, connector.needs_oauth) == (
        "csv", ("job_completed",), False)


# --- realistic exports ----------------------------------------------------------------------

def test_jobber_like_export(http: httpx.Client) -> None:
    maria = ident(email="maria.gonzalez@example.com")
    lee = ident(email="dlee@example.com")
    priya = ident(phone="15125550199")
    tom = ident(email="tom@example.com")
    f = "jobber_jobs_export.csv"
    assert data_records(run(http, DATA / f, {"timezone": "America/Chicago"})) == [
        customer(maria, f"{f}:2", name="Maria Gonzalez", email="maria.gonzalez@example.com",
                 phone="(555) 201-3344", address="12 Oak Ave, Austin, TX 78701",
                 tags=("residential", "spring")),
        job(maria, "2024-05-01", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01",
            f"{f}:2"),
        customer(lee, f"{f}:3", name="Lee, Daniel", email="DLEE@Example.COM",
                 address="400 Congress Ave, Suite 200, Austin, TX 78701", tags=("commercial",)),
        job(lee, "2024-05-02T14:30:00", datetime(2024, 5, 2, 14, 30, tzinfo=CHICAGO),
            "2024-05-02 14:30", f"{f}:3"),
        customer(priya, f"{f}:4", name="Priya Raman", phone="+1 512 555 0199",
                 address="7 Elm St, Round Rock, TX 78664"),
        job(priya, "2024-05-03", datetime(2024, 5, 3, 12, tzinfo=CHICAGO), "05/03/2024",
            f"{f}:4"),
        Rejected("no name, email or phone", f"{f}:5"),
        customer(tom, f"{f}:6", name="Tom O'Neil", email="tom@example.com",
                 phone="512-555-0123"),
        Rejected("unusable date 'not yet': not a date format we read; use YYYY-MM-DD, "
                 "M/D/YYYY or D.M.YYYY", f"{f}:6", "completed_at", "not yet"),
    ]


def test_quickbooks_contact_list_with_title_lines(http: httpx.Client) -> None:
    f = "quickbooks_customer_contact_list.csv"
    records = data_records(run(http, DATA / f))
    assert [(r.location, r.name, r.email, r.phone) for r in records] == [  # type: ignore[union-attr]
        (f"{f}:5", "Amy Lauterbach", "Birds@Intuit.com", "Phone:(650) 555-3311"),
        (f"{f}:6", "Bill Lucchini", "Surf@Intuit.com", "(415) 444-6538"),
        (f"{f}:7", "Grace Pariente", "Cool_Cars@intuit.com", "(415) 555-9933"),
        # Full Name empty: falls back to the Customer (display name) column.
        (f"{f}:8", "Diego Rodriguez", "Diego@Rodriguez.com", "(650) 555-4477"),
        # A formula is stored as the text it is.
        (f"{f}:9", '=HYPERLINK("http://evil.example","click")', None, None),
    ]
    assert records[0].address == "4581 Finch St., Bayshore, CA  94326"  # type: ignore[union-attr]


def test_excel_semicolon_windows_1252(http: httpx.Client) -> None:
    f = "excel_semicolon_cp1252.csv"
    assert b"\x92" in (DATA / f).read_bytes()  # the file really is cp1252 (’ is 0x92)
    zoe = ident(email="zoe@example.fr")
    sean = ident(email="sean@example.ie")
    cafe = ident(email="contact@cafe-creme.example")
    assert data_records(run(http, DATA / f)) == [
        customer(zoe, f"{f}:2", name="Zoë Renée Dupont", email="zoe@example.fr",
                 phone="+33 6 12 34 56 78", address="5 rue de l’Église, Lyon, 69002"),
        job(zoe, "2024-05-01", datetime(2024, 5, 1, 12, tzinfo=UTC), "01.05.2024", f"{f}:2"),
        customer(sean, f"{f}:3", name="Seán O’Brien", email="sean@example.ie",
                 address="12 Main St; Apt 4, Cork, T12"),
        job(sean, "2024-04-15", datetime(2024, 4, 15, 12, tzinfo=UTC), "15.04.2024",
            f"{f}:3"),
        customer(cafe, f"{f}:4", name="Café Crème SARL", email="contact@cafe-creme.example",
                 phone="04 78 00 00 00"),
        Rejected("unusable date '31.02.2024': day is out of range for month", f"{f}:4",
                 "completed_at", "31.02.2024"),
    ]


# --- encodings, delimiters, line endings, quoting -----------------------------------------

def names_and_lines(records: list[Record]) -> list[tuple[str | None, str | None]]:
    return [(r.name, r.location) for r in data_records(records)]  # type: ignore[union-attr]


@pytest.mark.parametrize("encoding,prefix", [
    ("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("utf-16", b""),
])
def test_encodings(tmp_path: Path, http: httpx.Client, encoding: str, prefix: bytes) -> None:
    path = tmp_path / "people.csv"
    text = "Name,Email\r\nJosé Núñez,jose@example.com\r\nAoife O’Neill,aoife@example.com\r\n"
    path.write_bytes(prefix + text.encode(encoding))
    records = data_records(run(http, path))
    assert [(r.name, r.email, r.location) for r in records] == [  # type: ignore[union-attr]
        ("José Núñez", "jose@example.com", "people.csv:2"),
        ("Aoife O’Neill", "aoife@example.com", "people.csv:3"),
    ]


def test_late_non_utf8_byte_still_detected_as_cp1252(tmp_path: Path,
                                                      http: httpx.Client) -> None:
    """Detection reads every byte: a lone é after 100 KB of ASCII is not UTF-8."""
    rows = "".join(f"Person {i},p{i}@example.com\n" for i in range(5000))
    path = write(tmp_path, "Name,Email\n" + rows + "Renée,renee@example.com\n",
                 encoding="cp1252")
    assert path.stat().st_size > 100_000
    assert data_records(run(http, path))[-1].name == "Renée"  # type: ignore[union-attr]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiters_are_sniffed(tmp_path: Path, http: httpx.Client, sep: str) -> None:
    # The data rows carry the other delimiters unquoted: only the header decides.
    other = "".join(d for d in ",;\t" if d != sep)
    text = f"Name{sep}Email{sep}Address\n"
    text += f"Ann{sep}ann@example.com{sep}1 Main St{other}Springfield\n"
    records = data_records(run(http, write(tmp_path, text)))
    assert [(r.name, r.email, r.address) for r in records] == [  # type: ignore[union-attr]
        ("Ann", "ann@example.com", f"1 Main St{other}Springfield")]


def test_excel_sep_line_names_the_delimiter(tmp_path: Path, http: httpx.Client) -> None:
    path = write(tmp_path, "sep=;\nName;Email\nAnn, Jr;ann@example.com\n")
    assert names_and_lines(run(http, path)) == [("Ann, Jr", "in.csv:3")]


def test_quoted_cells_with_delimiters_quotes_and_newlines(tmp_path: Path,
                                                          http: httpx.Client) -> None:
    text = ('Name,Email,Address\r\n'
            '"Smith, John",john@example.com,"1 Main St\r\nApt 2\r\nSpringfield"\r\n'
            '"Bob ""The Builder"" Jones",bob@example.com,\r\n'
            'Carol,carol@example.com,"multi\nline, with LF only"\r\n'
            'Dave,dave@example.com,3 Elm St\r\n')
    records = data_records(run(http, write(tmp_path, text)))
    assert [(r.name, r.address, r.location) for r in records] == [  # type: ignore[union-attr]
        ("Smith, John", "1 Main St\r\nApt 2\r\nSpringfield", "in.csv:2"),
        ('Bob "The Builder" Jones', None, "in.csv:5"),
        ("Carol", "multi\nline, with LF only", "in.csv:6"),
        ("Dave", "3 Elm St", "in.csv:8"),
    ]


def test_unterminated_quote_rejects_one_line_and_reading_resumes(tmp_path: Path,
                                                                  http: httpx.Client) -> None:
    text = ('Name,Email\n'
            'Ann,ann@example.com\n'
            'Bob,"bob@example.com\n'
            'Carol,carol@example.com\n'
            'Dan "the man",dan@example.com\n'
            '"Eve"x,eve@example.com\n'
            'Fay,fay@example.com\n')
    assert data_records(run(http, write(tmp_path, text))) == [
        customer(ident("ann@example.com"), "in.csv:2", name="Ann", email="ann@example.com"),
        Rejected("a quoted cell starting on this line is never closed; the line was skipped",
                 "in.csv:3"),
        customer(ident("carol@example.com"), "in.csv:4", name="Carol",
                 email="carol@example.com"),
        customer(ident("dan@example.com"), "in.csv:5", name='Dan "the man"',
                 email="dan@example.com"),
        Rejected('text after a closing quote (write a quote inside a quoted cell as ""); '
                 "the line was skipped", "in.csv:6"),
        customer(ident("fay@example.com"), "in.csv:7", name="Fay", email="fay@example.com"),
    ]


def test_row_shapes(tmp_path: Path, http: httpx.Client) -> None:
    text = ("Name,Email,Phone,Tags\n"
            "Ann,ann@example.com\n"  # short row: missing trailing cells are empty
            "\n"  # blank line: skipped silently
            ",,,\n"  # empty cells only: skipped silently
            "Bob,bob@example.com,,,,\n"  # extra empty cells: ignored
            "Smith, John,john@example.com,555-0100,vip\n"  # unquoted comma: columns shift
            ",,,vip\n"  # nobody to contact
            "  ,  , ,\n")
    assert data_records(run(http, write(tmp_path, text))) == [
        customer(ident("ann@example.com"), "in.csv:2", name="Ann", email="ann@example.com"),
        customer(ident("bob@example.com"), "in.csv:5", name="Bob", email="bob@example.com"),
        Rejected("5 cells but the header has 4, and the email or phone column holds something "
                 "else (an unquoted comma inside a cell?)", "in.csv:6"),
        Rejected("no name, email or phone", "in.csv:7"),
    ]


# --- headers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("header,field", [
    ("Name", "name"), ("Full Name", "name"), ("Customer Name", "name"), ("CLIENT NAME", "name"),
    ("customer_name", "name"), ("Display Name", "name"), ("E-mail", "email"),
    ("Email Address", "email"), ("email", "email"), (" E-Mail Address ", "email"),
    ("Client Email", "email"), ("Phone", "phone"), ("Phone Number", "phone"),
    ("Mobile", "mobile"), ("Cell", "mobile"), ("Mobile Phone #s", "mobile"), ("Tel.", "phone"),
    ("Phone #", "phone"), ("Téléphone portable", "mobile"), ("Handy", "mobile"),
    ("Móvil", "mobile"), ("Courriel", "email"), ("Correo electrónico", "email"),
    ("E-mail 1 - Value", "email"), ("Phone 1 - Value", "phone"), ("Main Phone #s", "phone"),
    ("Telefonnummer", "phone"),
])
def test_contact_header_variants(tmp_path: Path, http: httpx.Client, header: str,
                                 field: str) -> None:
    path = write(tmp_path, f'"{header}",Notes\nX-value,hello\n')
    (record,) = data_records(run(http, path))
    assert getattr(record, field) == "X-value"


@pytest.mark.parametrize("header", ["Customer ID", "Client ID", "ID", "External ID",
                                    "customer-id", "Customer #"])
def test_id_header_variants(tmp_path: Path, http: httpx.Client, header: str) -> None:
    (record,) = data_records(run(http, write(tmp_path, f'Name,"{header}"\nAnn,C-17\n')))
    assert record.external_id == "C-17"  # type: ignore[union-attr]


def test_empty_id_cell_falls_back_to_a_derived_id(tmp_path: Path, http: httpx.Client) -> None:
    (record,) = data_records(run(http, write(tmp_path, "ID,Email\n,ann@example.com\n")))
    assert record.external_id == ident("ann@example.com")  # type: ignore[union-attr]


@pytest.mark.parametrize("header", ["Completed At", "Job Date", "Service Date",
                                    "Date Completed", "completed_at"])
def test_date_header_variants(tmp_path: Path, http: httpx.Client, header: str) -> None:
    records = data_records(run(http, write(tmp_path, f'Name,"{header}"\nAnn,2024-05-01\n')))
    assert [type(r) for r in records] == [CustomerRecord, EventRecord]


def test_first_and_last_name_address_parts_and_tags(tmp_path: Path,
                                                    http: httpx.Client) -> None:
    text = ("First Name,Last Name,Street Address,City,State,Zip,Tags\n"
            "Ann,Lee,1 Main St,Springfield,IL,62704,\"vip; residential, \"\n"
            "Bo,,,,,,\n")
    records = data_records(run(http, write(tmp_path, text)))
    assert [(r.name, r.address, r.tags) for r in records] == [  # type: ignore[union-attr]
        ("Ann Lee", "1 Main St, Springfield, IL 62704", ("vip", "residential")),
        ("Bo", None, ()),
    ]


def test_mobile_kept_apart_from_the_phone(tmp_path: Path, http: httpx.Client) -> None:
    text = "Name,Phone,Mobile\nAnn,555-0100,555-0199\nBob,555-0200,\n"
    records = data_records(run(http, write(tmp_path, text)))
    assert [(r.phone, r.mobile) for r in records] == [  # type: ignore[union-attr]
        ("555-0100", "555-0199"), ("555-0200", None)]


def test_column_mapping(tmp_path: Path, http: httpx.Client) -> None:
    text = "Kunde;Mail;Handy;Auftrag erledigt\nAnn;ann@example.com;555-0100;2024-05-01\n"
    settings = {"columns": {"name": "KUNDE", "email": "Mail", "phone": "Handy",
                            "completed_at": "Auftrag erledigt"}}
    records = data_records(run(http, write(tmp_path, text), settings))
    assert [type(r) for r in records] == [CustomerRecord, EventRecord]
    assert (records[0].name, records[0].email, records[0].phone) == (  # type: ignore[union-attr]
        "Ann", "ann@example.com", "555-0100")


def test_mapping_naming_a_missing_header_fails(tmp_path: Path, http: httpx.Client) -> None:
    path = write(tmp_path, "Name,Email\nAnn,ann@example.com\n")
    with pytest.raises(InputError) as err:
        run(http, path, {"columns": {"email": "Contact Mail"}})
    assert str(err.value) == ("in.csv: the column mapping names headers not in the file "
                              "(email -> 'Contact Mail'); its first line is: 'Name', 'Email'")


def test_mapping_with_unknown_field_is_a_config_error(tmp_path: Path,
                                                      http: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="unknown field 'emial'"):
        run(http, write(tmp_path, "Name\nAnn\n"), {"columns": {"emial": "Email"}})


# --- files that are not usable at all -------------------------------------------------------

def assert_fails_before_any_record(http: httpx.Client, path: Path, message: str) -> None:
    ctx = ConnectorContext(uuid.uuid4(), None, "", {}, None, http, logging.getLogger("t"),
                           options={"path": path})
    stream = CsvConnector().sync(ctx)
    with pytest.raises(InputError) as err:
        next(stream)  # the very first record: nothing was yielded before the error
    assert str(err.value) == message


def test_no_usable_header(tmp_path: Path, http: httpx.Client) -> None:
    path = write(tmp_path, "Notes,Amount\nhello,12\n")
    assert_fails_before_any_record(
        http, path, "in.csv: no usable header: no name, email or phone column in the first "
        "line 'Notes', 'Amount'; name one of Name, Full Name, First Name + Last Name, Email, "
        "Phone, Mobile, or map columns in the csv.columns setting")


def test_headerless_data_is_called_out(tmp_path: Path, http: httpx.Client) -> None:
    path = write(tmp_path, "Ann Lee,ann@example.com,555-0100\nBob,bob@example.com,\n")
    assert_fails_before_any_record(
        http, path, "in.csv: no usable header: no name, email or phone column in the first "
        "line 'Ann Lee', 'ann@example.com', '555-0100' (that looks like data: the file needs "
        "a header line); name one of Name, Full Name, First Name + Last Name, Email, Phone, "
        "Mobile, or map columns in the csv.columns setting")


@pytest.mark.parametrize("content,message", [
    (b"Name,Email\nAnn\x00,ann@example.com\n", "in.csv: contains NUL bytes: not a text file"),
    (b"PK\x03\x04\x14\x00\x06\x00rest of a workbook",
     "in.csv: is a ZIP archive (an .xlsx workbook?); save it as CSV first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "in.csv: is an Excel 97-2003 workbook (.xls); "
     "save it as CSV first"),
    (bytes(range(1, 32)) * 10, "in.csv: contains control characters: not a text file"),
    (b"", "in.csv: the file is empty"),
    (b"\xef\xbb\xbf\r\n\r\n", "in.csv: the file is empty"),
])
def test_not_text(tmp_path: Path, http: httpx.Client, content: bytes, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    assert_fails_before_any_record(http, path, message)


def test_nul_byte_late_in_a_large_file(tmp_path: Path, http: httpx.Client) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"Name\n" + b"Ann\n" * 100_000 + b"\x00\x00")
    with pytest.raises(InputError, match=r"^in\.csv: contains NUL bytes at offset"):
        next(CsvConnector().sync(ConnectorContext(
            uuid.uuid4(), None, "", {}, None, http, logging.getLogger("t"),
            options={"path": path})))


def test_missing_file(tmp_path: Path, http: httpx.Client) -> None:
    assert_fails_before_any_record(http, tmp_path / "nope.csv",
                                   f"nope.csv: no such file ({tmp_path / 'nope.csv'})")


# --- formulas -------------------------------------------------------------------------------

def test_formula_cells_pass_through_as_given(tmp_path: Path, http: httpx.Client) -> None:
    text = ('Name,Email,Phone,Address\n'
            '=1+2,@evil.example,+15551234567,-5 Main St\n'
            '"=HYPERLINK(""http://x"",""y"")",ann@example.com,+1 (555) 123-4567,@home\n')
    records = data_records(run(http, write(tmp_path, text)))
    assert [(r.name, r.email, r.phone, r.address) for r in records] == [  # type: ignore[union-attr]
        ("=1+2", "@evil.example", "+15551234567", "-5 Main St"),
        ('=HYPERLINK("http://x","y")', "ann@example.com", "+1 (555) 123-4567", "@home"),
    ]


@pytest.mark.parametrize("value,escaped", [
    ("=1+2", "'=1+2"), ("+15551234567", "'+15551234567"), ("-5", "'-5"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("Ann", "Ann"), ("", ""), ("a=b", "a=b"), ("'quoted", "'quoted"),
])
def test_escape_formula(value: str, escaped: str) -> None:
    assert escape_formula(value) == escaped


# --- derived ids ----------------------------------------------------------------------------

def test_derived_ids_prefer_email_then_phone_digits_then_name() -> None:
    sha = lambda text: "csv:" + hashlib.sha1(text.encode()).hexdigest()  # noqa: E731
    assert derived_external_id(" Ann@Example.COM ", "555", "Ann") == sha("email:ann@example.com")
    assert derived_external_id("", "+1 (555) 010-0199", "Ann") == sha("phone:15550100199")
    assert derived_external_id("", "", "  Ann   LEE ") == sha("name:ann lee")


def test_derived_ids_stable_across_reordered_re_export(tmp_path: Path,
                                                       http: httpx.Client) -> None:
    rows = ["Ann,ann@example.com,", "Bob,,555-0100", "Carol,,"]
    first = write(tmp_path, "Name,Email,Phone\n" + "\n".join(rows) + "\n", "a.csv")
    again = write(tmp_path, "Phone,Name,Email\n" + "\n".join(
        ",".join([r.split(",")[2], r.split(",")[0], r.split(",")[1]])
        for r in reversed(rows)) + "\n,Dan,\n", "b.csv")
    ids_first = {r.name: r.external_id for r in data_records(run(http, first))}  # type: ignore[union-attr]
    ids_again = {r.name: r.external_id for r in data_records(run(http, again))}  # type: ignore[union-attr]
    assert ids_again == {**ids_first, "Dan": ident(name="Dan")}
    assert ids_first == {"Ann": ident("ann@example.com"), "Bob": ident(phone="5550100"),
                         "Carol": ident(name="Carol")}


# --- dates ----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected,key", [
    ("2024-05-01", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("2024-05-01 14:30", datetime(2024, 5, 1, 14, 30, tzinfo=CHICAGO), "2024-05-01T14:30:00"),
    ("2024-05-01T14:30:00Z", datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
     "2024-05-01T14:30:00+00:00"),
    ("2024-05-01T09:30:00-05:00", datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
     "2024-05-01T14:30:00+00:00"),
    ("5/1/2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("05/01/2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("5/1/24", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("5/1/2024 2:30 PM", datetime(2024, 5, 1, 14, 30, tzinfo=CHICAGO), "2024-05-01T14:30:00"),
    ("5/1/2024 12:05 am", datetime(2024, 5, 1, 0, 5, tzinfo=CHICAGO), "2024-05-01T00:05:00"),
    ("5/1/2024 14:30:15", datetime(2024, 5, 1, 14, 30, 15, tzinfo=CHICAGO),
     "2024-05-01T14:30:15"),
    ("1.5.2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("May 1, 2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("1 May 2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("01-May-2024", datetime(2024, 5, 1, 12, tzinfo=CHICAGO), "2024-05-01"),
    ("September 30, 2024", datetime(2024, 9, 30, 12, tzinfo=CHICAGO), "2024-09-30"),
])
def test_accepted_dates(raw: str, expected: datetime, key: str) -> None:
    assert DateParser(CHICAGO).parse(raw) == (expected, key)  # the same instant


@pytest.mark.parametrize("raw,reason", [
    ("05-06-2024", "ambiguous day/month order; use YYYY-MM-DD, M/D/YYYY or D.M.YYYY"),
    ("25/12/2024", "month first (M/D/YYYY) is expected, and this looks day first; set "
     "date_order = \"dmy\" for day-first files"),
    ("2/30/2024", "day is out of range for month"),
    ("2024-13-01", "month must be in 1..12"),
    ("5/1/202", "the year must have 4 (or 2) digits; use YYYY-MM-DD, M/D/YYYY or D.M.YYYY"),
    ("5/1/2024 25:00", "hour must be in 0..23"),
    ("5/1/2024 noon", "unreadable time 'noon'"),
    ("45413", "not a date format we read; use YYYY-MM-DD, M/D/YYYY or D.M.YYYY"),
    ("yesterday", "not a date format we read; use YYYY-MM-DD, M/D/YYYY or D.M.YYYY"),
])
def test_rejected_dates(raw: str, reason: str) -> None:
    assert DateParser(UTC).parse(raw) == f"unusable date {raw!r}: {reason}"


def test_day_first_setting(tmp_path: Path, http: httpx.Client) -> None:
    path = write(tmp_path, "Name,Job Date\nAnn,25/12/2024\nBob,1/2/2024\n")
    events = [r for r in run(http, path, {"date_order": "dmy", "timezone": "Europe/London"})
              if isinstance(r, EventRecord)]
    assert [e.occurred_at for e in events] == [
        datetime(2024, 12, 25, 12, tzinfo=ZoneInfo("Europe/London")),
        datetime(2024, 2, 1, 12, tzinfo=ZoneInfo("Europe/London"))]


def test_bad_timezone_setting(tmp_path: Path, http: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        run(http, write(tmp_path, "Name\nAnn\n"), {"timezone": "Mars/Olympus"})


# --- checkpoints and resume -----------------------------------------------------------------

def big_file(tmp_path: Path, rows: int) -> Path:
    lines = ["Name,Email,Job Date"] + [f"P{i},p{i}@example.com,2024-05-01" for i in range(rows)]
    return write(tmp_path, "\n".join(lines) + "\n", "big.csv")


def test_checkpoints_every_n_rows_and_at_the_end(tmp_path: Path, http: httpx.Client) -> None:
    path = big_file(tmp_path, 2 * CHECKPOINT_ROWS + 7)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    checkpoints = [r.cursor for r in run(http, path) if isinstance(r, Checkpoint)]
    base = {"file_sha256": sha, "file": "big.csv", "complete": False}
    assert checkpoints == [
        {**base, "rows_done": CHECKPOINT_ROWS, "line": CHECKPOINT_ROWS + 1},
        {**base, "rows_done": 2 * CHECKPOINT_ROWS, "line": 2 * CHECKPOINT_ROWS + 1},
        {**base, "rows_done": 2 * CHECKPOINT_ROWS + 7, "line": 2 * CHECKPOINT_ROWS + 8,
         "complete": True},
    ]


def test_resume_from_cursor_yields_exactly_the_rest(tmp_path: Path,
                                                    http: httpx.Client) -> None:
    path = big_file(tmp_path, 2 * CHECKPOINT_ROWS + 7)
    full = run(http, path)
    first_cp = next(i for i, r in enumerate(full) if isinstance(r, Checkpoint))
    cursor = full[first_cp].cursor  # type: ignore[union-attr]
    assert run(http, path, cursor=cursor) == full[first_cp + 1:]
    # --full ignores the cursor; a different file or a finished import starts over.
    assert run(http, path, cursor=cursor, full=True) == full
    assert run(http, path, cursor={**cursor, "file_sha256": "0" * 64}) == full
    assert run(http, path, cursor=full[-1].cursor) == full  # type: ignore[union-attr]


def test_resume_line_numbers_survive_multiline_cells(tmp_path: Path,
                                                     http: httpx.Client) -> None:
    rows = [f'P{i},"line one\nline two",p{i}@example.com' for i in range(CHECKPOINT_ROWS + 3)]
    path = write(tmp_path, "Name,Address,Email\n" + "\n".join(rows) + "\n")
    full = run(http, path)
    cp = next(i for i, r in enumerate(full) if isinstance(r, Checkpoint))
    resumed = run(http, path, cursor=full[cp].cursor)  # type: ignore[union-attr]
    assert resumed == full[cp + 1:]
    assert resumed[0].location == f"in.csv:{2 * CHECKPOINT_ROWS + 2}"  # type: ignore[union-attr]
