"""Configuration: the file, BLIPPSYNC_* overrides, $env/$file indirection, and errors that
name the key and the file without ever echoing a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from blippsync.cli import cli
from blippsync.config import load_config
from blippsync.errors import ConfigError
from blippsync.settings import SETTINGS, SETTINGS_BY_KEY

SECRET = "s3cret-Pa55word-xyz"


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_unknown_key_exits_1_naming_key_and_file(workdir: Path) -> None:
    bad = _write(workdir / "bad.toml", '[database]\nurll = "postgresql://x@localhost/db"\n')
    line = _one_error_line(_run("--config", str(bad), "status"))
    assert "database.urll" in line and "bad.toml" in line


def test_unknown_section_exits_1_naming_it(workdir: Path) -> None:
    bad = _write(workdir / "bad.toml", "[databse]\nurl = ''\n")
    line = _one_error_line(_run("--config", str(bad), "status"))
    assert "databse.url" in line and "bad.toml" in line


def test_wrong_type_exits_1_naming_key_and_file(workdir: Path) -> None:
    bad = _write(workdir / "bad.toml", '[sync]\nbatch_size = "lots"\n')
    line = _one_error_line(_run("--config", str(bad), "status"))
    assert "sync.batch_size" in line and "bad.toml" in line and "integer" in line


def test_invalid_toml_names_the_file(workdir: Path) -> None:
    bad = _write(workdir / "bad.toml", "[database\nurl = \n")
    line = _one_error_line(_run("--config", str(bad), "status"))
    assert "bad.toml" in line and "TOML" in line


def test_missing_config_file_is_one_line(workdir: Path) -> None:
    line = _one_error_line(_run("--config", str(workdir / "nope.toml"), "status"))
    assert "nope.toml" in line


def test_wrong_type_in_environment_names_the_variable(workdir: Path) -> None:
    line = _one_error_line(_run("status", env={"BLIPPSYNC_SYNC_BATCH_SIZE": "many"}))
    assert "BLIPPSYNC_SYNC_BATCH_SIZE" in line and "sync.batch_size" in line


def test_environment_overrides_the_file(workdir: Path) -> None:
    cfg = _write(workdir / "config.toml", "[sync]\nbatch_size = 10\n[logging]\nlevel = 'DEBUG'\n")
    config = load_config(cfg, environ={"BLIPPSYNC_SYNC_BATCH_SIZE": "20",
                                       "BLIPPSYNC_DATABASE_AUTO_MIGRATE": "off",
                                       "BLIPPSYNC_DATABASE_CONNECT_ARGS":
                                           '{ sslmode = "require" }'})
    assert config["sync.batch_size"] == 20
    assert config["database.auto_migrate"] is False
    assert config["database.connect_args"] == {"sslmode": "require"}
    assert config["logging.level"] == "DEBUG"                 # from the file
    assert config["sync.default_country"] == "US"            # the default


def test_environment_overrides_the_file_through_the_cli(workdir: Path, database_url: str) -> None:
    cfg = _write(workdir / "config.toml",
                 '[database]\nurl = "postgresql://nobody@127.0.0.1:1/nothing"\n')
    result = _run("--config", str(cfg), "status", "--json",
                  env={"BLIPPSYNC_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert '"server_version"' in result.stdout


def test_every_setting_has_one_env_var_following_the_rule() -> None:
    names = [s.env_var for s in SETTINGS]
    assert len(set(names)) == len(names)
    assert SETTINGS_BY_KEY["database.url"].env_var == "BLIPPSYNC_DATABASE_URL"
    for setting in SETTINGS:
        assert setting.env_var == "BLIPPSYNC_" + setting.key.upper().replace(".", "_")


def test_default_config_is_the_file_in_the_current_folder(workdir: Path) -> None:
    _write(workdir / "config.toml", "[sync]\nbatch_size = 7\n")
    assert load_config(environ={})["sync.batch_size"] == 7
    other = _write(workdir / "other.toml", "[sync]\nbatch_size = 8\n")
    assert load_config(environ={"BLIPPSYNC_CONFIG": str(other)})["sync.batch_size"] == 8


def test_env_indirection_reads_the_named_variable(workdir: Path, database_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_DATABASE_URL", database_url)
    cfg = _write(workdir / "config.toml", '[database]\nurl = { "$env" = "MY_DATABASE_URL" }\n')
    # $env reads the mapping given to load_config, not os.environ
    assert load_config(cfg, environ={"MY_DATABASE_URL": "postgresql://x@h/d"}
                       )["database.url"] == "postgresql://x@h/d"
    result = _run("--config", str(cfg), "status")
    assert result.exit_code == 0, result.output


def test_env_indirection_to_a_missing_variable_names_key_and_variable(workdir: Path) -> None:
    cfg = _write(workdir / "config.toml", '[smtp]\npassword = { "$env" = "NOT_SET_ANYWHERE" }\n')
    line = _one_error_line(_run("--config", str(cfg), "status"))
    assert "smtp.password" in line and "NOT_SET_ANYWHERE" in line and "config.toml" in line


def test_file_indirection_reads_a_file_relative_to_the_config(workdir: Path) -> None:
    (workdir / "secrets").mkdir()
    _write(workdir / "secrets" / "smtp", SECRET + "\n")
    cfg = _write(workdir / "config.toml", '[smtp]\npassword = { "$file" = "secrets/smtp" }\n')
    assert load_config(cfg, environ={})["smtp.password"] == SECRET


def test_file_indirection_to_a_missing_file_is_one_line(workdir: Path) -> None:
    cfg = _write(workdir / "config.toml", '[smtp]\npassword = { "$file" = "nowhere" }\n')
    line = _one_error_line(_run("--config", str(cfg), "status"))
    assert "smtp.password" in line and "nowhere" in line


@pytest.mark.parametrize("toml", [
    f'[database]\nurl = "postgresql://app:{SECRET}@127.0.0.1:1/blipp"\n',      # unreachable
    f'[database]\nurl = "{SECRET}"\n',                                          # not a URL
    f'[database]\nurl = "mysql://app:{SECRET}@127.0.0.1/blipp"\n',              # wrong scheme
    f'[encryption]\nkeys = "{SECRET}"\n',                                       # wrong type
    f'[smtp]\npassword = ["{SECRET}"]\n',                                       # wrong type
])
def test_secret_values_never_appear_in_errors(workdir: Path, toml: str) -> None:
    cfg = _write(workdir / "config.toml", toml)
    result = _run("--config", str(cfg), "status")
    line = _one_error_line(result)
    assert SECRET not in result.output and SECRET not in line


def test_secret_from_environment_never_appears_in_errors(workdir: Path) -> None:
    result = _run("status", env={
        "BLIPPSYNC_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:1/blipp"})
    line = _one_error_line(result)
    assert SECRET not in result.output
    assert "127.0.0.1" in line  # it still says where it tried


def test_load_config_rejects_a_wrong_type_directly(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.toml", "[database]\npool_size = true\n")
    with pytest.raises(ConfigError, match=r"c\.toml: 'database\.pool_size' must be an integer"):
        load_config(cfg, environ={})


def test_indirection_into_typed_settings_parses_like_the_environment(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("key-one,key-two\n")
    cfg = _write(tmp_path / "c.toml", '[encryption]\nkeys = { "$file" = "keys" }\n'
                                      '[sync]\nbatch_size = { "$env" = "BATCH" }\n')
    config = load_config(cfg, environ={"BATCH": "12"})
    assert config["encryption.keys"] == ["key-one", "key-two"]
    assert config["sync.batch_size"] == 12
    with pytest.raises(ConfigError, match=r"c\.toml: 'sync\.batch_size' must be an integer"):
        load_config(cfg, environ={"BATCH": "twelve"})


def test_connect_args_pass_through_to_the_driver(workdir: Path, database_url: str) -> None:
    import sqlalchemy as sa

    from blippsync.database import Database

    cfg = _write(workdir / "config.toml",
                 '[database]\nconnect_args = { application_name = "blipp-test" }\n')
    config = load_config(cfg, environ={"BLIPPSYNC_DATABASE_URL": database_url})
    db = Database.from_config(config)
    try:
        with db.connect() as conn:
            assert conn.execute(sa.text("SHOW application_name")).scalar_one() == "blipp-test"
    finally:
        db.dispose()
    if "host=/" in database_url or "host=%2F" in database_url:
        return  # a Unix socket (the embedded server): libpq never uses TLS there
    # TLS options too: an unverifiable server certificate is refused, in one line
    tls = _write(workdir / "tls.toml", '[database]\nconnect_args = { sslmode = "verify-full", '
                                       'sslrootcert = "/nonexistent/root.crt" }\n')
    line = _one_error_line(_run("--config", str(tls), "status",
                                env={"BLIPPSYNC_DATABASE_URL": database_url}))
    assert "ssl" in line.lower()


def test_a_config_never_renders_a_secret(tmp_path: Path) -> None:
    """Whatever prints or logs a Config (repr, str, f-string, %r, a holder's repr)."""
    from dataclasses import dataclass

    secrets = {s.env_var: f"s3cret-{i:04d}-{s.key}" for i, s in enumerate(SETTINGS) if s.secret}
    env = {k: v for k, v in secrets.items() if not k.endswith("_KEYS")}
    env["BLIPPSYNC_ENCRYPTION_KEYS"] = "s3cret-key-one,s3cret-key-two"
    cfg = tmp_path / "config.toml"
    cfg.write_text('[plugins.acme]\nclient_secret = "s3cret-plugin"\napi_token = "s3cret-tok"\n'
                   'region = "eu"\n[database]\nconnect_args = { password = "s3cret-pw" }\n')
    config = load_config(cfg, environ=env)
    assert config["smtp.password"].startswith("s3cret")  # the values themselves are intact

    @dataclass
    class Holder:
        config: Any

    rendered = [repr(config), str(config), f"{config}", f"{config!r}", repr(config.values),
                str(config.values), repr(config.plugins), repr(Holder(config)),
                repr(config.with_values(smtp__host="mail"))]
    for text in rendered:
        assert "s3cret" not in text, text
    assert "'region': 'eu'" in repr(config.plugins) and "'smtp.host'" in repr(config)
