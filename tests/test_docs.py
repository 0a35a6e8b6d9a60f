"""The documentation cannot drift from the code: every setting is in README.md's reference and
in config.toml, every command is in the README, and config.toml is a working file.

When one fails: `python scripts/gen_config_docs.py --write` regenerates the tables and
config.toml from blippsync/settings.py and the CLI.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from blippsync.config import load_config
from blippsync.settings import SETTINGS, SETTINGS_BY_KEY

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG_TOML = REPO / "config.toml"
FIX = "run `python scripts/gen_config_docs.py --write`"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs",
                                                  REPO / "scripts" / "gen_config_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _between(text: str, begin: str, end: str) -> str:
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n") + "\n"


def test_readme_configuration_reference_matches_settings(gen: ModuleType) -> None:
    reference = _between(README, gen.BEGIN, gen.END)
    for setting in SETTINGS:
        assert f"| `{setting.key}` | `{setting.env_var}` |" in reference, \
            f"{setting.key} is missing from README.md's configuration reference: {FIX}"
    assert reference == gen.markdown_table(), f"README.md's configuration reference is stale: {FIX}"


def test_config_toml_lists_every_setting_in_its_section() -> None:
    section, found = None, set()
    for line in CONFIG_TOML.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^#?\s*\[([a-z_]+)\]\s*$", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"^(?:# )?([a-z_]+) = ", line)
        if key and section:
            found.add(f"{section}.{key.group(1)}")
    missing = [s.key for s in SETTINGS if s.key not in found]
    assert missing == [], f"config.toml lacks {missing}: {FIX}"


def test_config_toml_is_a_working_configuration() -> None:
    config = load_config(CONFIG_TOML, environ={})
    assert config["database.url"] == ""  # the embedded database by default
    assert config.resolve_path("database.data_dir") == REPO / ".blippsync" / "pgdata"


def test_config_toml_commented_values_are_the_defaults(tmp_path: Path) -> None:
    """Uncommenting every example line gives a valid file holding exactly the defaults."""
    section, out = None, []
    for line in CONFIG_TOML.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[([a-z_]+)\]\s*$", line)
        if header:
            section = header.group(1)
        key = re.match(r"^# ([a-z_]+) = (.*)$", line)
        if key and f"{section}.{key.group(1)}" in SETTINGS_BY_KEY:
            line = line[2:]
        out.append(line)
    uncommented = tmp_path / "config.toml"
    uncommented.write_text("\n".join(out))
    tomllib.loads(uncommented.read_text())
    config = load_config(uncommented, environ={})
    for setting in SETTINGS:
        assert config[setting.key] == setting.default, setting.key


def test_secrets_are_shown_as_env_indirection_in_config_toml() -> None:
    text = CONFIG_TOML.read_text(encoding="utf-8")
    for setting in SETTINGS:
        if setting.secret:
            name = setting.key.split(".", 1)[1]
            assert re.search(rf'{name} = \{{ "\$env" = "[A-Z_]+" \}}', text), setting.key


def test_readme_names_every_command(gen: ModuleType) -> None:
    for path, _ in gen.command_paths():
        assert f"blippsync {' '.join(path)}" in README, \
            f"`blippsync {' '.join(path)}` is missing from README.md: {FIX}"
    assert _between(README, gen.CLI_BEGIN, gen.CLI_END) == gen.cli_table(), \
        f"README.md's command table is stale: {FIX}"


def test_readme_quickstart_commands() -> None:
    quickstart = README[README.index("## Quickstart"):]
    quickstart = quickstart[:quickstart.index("\n## ", 1)]
    blocks = re.findall(r"```sh\n(.*?)```", quickstart, re.S)
    assert blocks[0].strip() == "pip install -c requirements/lock.txt -e . && blippsync demo"
    assert blocks[1].strip() == \
        "pip install -c requirements/lock.txt -e '.[test,dev]' -e plugins/blippsync_stripe " \
        "&& python -m pytest"
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install --quiet -c requirements/lock.txt -e '.[test,dev]'" in ci
    assert "pip install --quiet --no-deps -e plugins/blippsync_stripe" in ci
    assert "\npython3 -m pytest\n" in ci
    assert "docs/architecture.md" in README
    assert (REPO / "docs" / "architecture.md").exists()


def test_lock_pins_every_declared_dependency() -> None:
    """requirements/lock.txt pins one exact version of every dependency pyproject.toml names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in ("test", "dev"):
        declared += project["optional-dependencies"][extra]
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if pin:
            pins[re.sub(r"[-_.]+", "-", pin.group(1)).lower()] = pin.group(2)
    for requirement in declared:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, \
            f"{name} is declared in pyproject.toml but not pinned in requirements/lock.txt"
