"""Seeing what happened to customer data from the command line: customers list, search and
show (ids that explain takes), and identity decisions listed and resolved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from journey_support import make_business

from blippsync.cli import cli
from blippsync.database import Database


def _run(cli_env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=cli_env)
    assert result.exit_code == 0, result.output
    return result


def _json(cli_env: dict[str, str], *args: str) -> Any:
    return json.loads(_run(cli_env, *args, "--json").stdout)


def _scalar(db: Database, sql: str) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def _import(cli_env: dict[str, str], tmp_path: Path, business: Any, text: str) -> Result:
    path = tmp_path / "export.csv"
    path.write_text(text)
    return _run(cli_env, "import", "csv", str(path), "--business", str(business))


SHARED = ("Customer ID,Name,Email,Phone,Mobile\n"
          "A1,Harbor Props - 12 Oak,office@harbor.example,617-555-0101,\n"
          "A2,Harbor Props - 40 Elm,office@harbor.example,,617-555-0199\n"
          "A3,Ann Lee,ann@lee.example,212-555-0142,\n")


def test_list_search_show_and_explain_take_the_same_ids(db: Database, cli_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    business = make_business(db)
    out = _import(cli_env, tmp_path, business, SHARED)
    assert "1 record(s) joined a customer by a shared email" in out.stdout
    assert "joined: record A2 (office@harbor.example)" in out.stdout
    listed = _json(cli_env, "customers", "list", "--business", str(business))
    assert sorted(c["name"] for c in listed) == ["Ann Lee", "Harbor Props - 12 Oak"]
    by_name = _json(cli_env, "customers", "search", "ann", "--business", str(business))
    by_phone = _json(cli_env, "customers", "search", "(212) 555-0142")
    by_email = _json(cli_env, "customers", "search", "HARBOR.example")
    by_other_record = _json(cli_env, "customers", "search", "A2")  # the joined record's id
    by_mobile = _json(cli_env, "customers", "search", "6175550199")
    assert [c["name"] for c in by_name] == [c["name"] for c in by_phone] == ["Ann Lee"]
    assert [c["external_id"] for c in by_email] == ["A1"]
    assert [c["external_id"] for c in by_other_record] == ["A1"]
    assert [c["external_id"] for c in by_mobile] == ["A1"]
    harbor = by_email[0]["id"]
    shown = _json(cli_env, "customers", "show", harbor)
    assert shown["mobile_phone"] == "+16175550199"  # the second record's mobile, kept
    assert [(i["external_id"], i["relation"], i["label"]) for i in shown["identities"]] == [
        ("A2", "shared_email", "Harbor Props - 40 Elm")]
    text = _run(cli_env, "customers", "show", harbor).stdout
    assert "SMS to: +16175550199" in text and f"blippsync explain --customer {harbor}" in text
    assert "Harbor Props - 12 Oak" in _run(cli_env, "explain", "--customer", harbor).stdout
    table = _run(cli_env, "customers", "list").stdout
    assert harbor in table and "blippsync explain --customer" in table


def test_a_joined_record_is_kept_apart_on_request(db: Database, cli_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    business = make_business(db)
    _import(cli_env, tmp_path, business, SHARED)
    (decision,) = _json(cli_env, "conflicts", "list", "--business", str(business))
    assert (decision["kind"], decision["external_id"]) == ("merged", "A2")
    result = _json(cli_env, "conflicts", "resolve", decision["id"], "--keep-apart")
    assert result["resolution"] == "kept_apart"
    assert _json(cli_env, "conflicts", "list") == []
    (apart,) = _json(cli_env, "customers", "search", "40 Elm")
    assert apart["external_id"] == "A2" and apart["email"] is None  # the address stays put
    assert apart["mobile_phone"] == "+16175550199"
    assert _scalar(db, "SELECT count(*) FROM customer_identities") == 0
    # importing the same file again does not join them again
    again = _import(cli_env, tmp_path, business, SHARED)
    assert "joined" not in again.stdout
    assert _scalar(db, "SELECT count(*) FROM customers") == 3
    resolved = _json(cli_env, "conflicts", "list", "--all")
    assert [d["resolution"] for d in resolved] == ["kept_apart"]


def test_an_email_conflict_is_resolved_by_merging(db: Database, cli_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    business = make_business(db)
    _import(cli_env, tmp_path, business, "Customer ID,Name,Email\nB1,Bea,bea@x.example\n"
                                         "B2,Bea Smith,bea.smith@x.example\n")
    out = _import(cli_env, tmp_path, business, "Customer ID,Name,Email\n"
                                               "B2,Bea Smith,bea@x.example\n")  # now taken
    assert "1 email conflict(s) held back" in out.stdout
    (decision,) = _json(cli_env, "conflicts", "list")
    assert decision["kind"] == "conflict" and decision["value"] == "bea@x.example"
    text = _run(cli_env, "conflicts", "list").stdout
    assert decision["id"] in text and "--keep-apart | --merge" in text
    _run(cli_env, "conflicts", "resolve", decision["id"], "--merge")
    (left,) = _json(cli_env, "customers", "list")
    assert (left["external_id"], left["email"]) == ("B1", "bea@x.example")
    assert _scalar(db, "SELECT count(*) FROM customers WHERE merged_into_id IS NOT NULL") == 1


def test_bad_ids_are_one_line_errors(cli_env: dict[str, str], db: Database) -> None:
    for args in (["customers", "show", "nope"], ["conflicts", "resolve", "nope", "--merge"],
                 ["customers", "show", "00000000-0000-0000-0000-000000000000"]):
        result = CliRunner().invoke(cli, args, env=cli_env)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith("error: ")
