"""The documentation cannot drift from the code: every setting is in README.md's reference and
in config.toml, every command is in the README, and config.toml is a working file.

When one fails: `python scripts/gen_config_docs.py --write` regenerates the tables and
config.toml from blippsync/settings.py and the CLI.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
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


# --- the prose: routes, commands, defaults and hooks named in the docs exist in the code ----

DOCS = {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
        for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
DEPLOYMENT = DOCS["docs/deployment.md"]


def test_deployment_lists_exactly_the_routes_the_server_serves() -> None:
    from blippsync.http.app import build_app
    from blippsync.http.state import HttpState
    from blippsync.metrics import DaemonMetrics
    from blippsync.plugins import load_plugins

    state = HttpState(config=load_config(CONFIG_TOML, environ={}), db=None,  # type: ignore[arg-type]
                      plugins=load_plugins(environ={}), metrics=DaemonMetrics())
    served = set()
    for route in build_app(state).routes:
        path = re.sub(r"\{(\w+)\}", r"<\1>", route.path)
        served |= {f"{method} {path}" for method in route.methods or () if method != "HEAD"}
    documented = set(re.findall(r"^\| `((?:GET|POST|PUT|DELETE) /[^`]*)`", DEPLOYMENT, re.M))
    documented = {d.split(" ")[0] + " " + d.split(" ")[1] for d in documented}
    assert documented == served, "docs/deployment.md's endpoint table differs from the app"
    public = re.search(r"Only ([^.]*) need to be public", DEPLOYMENT)
    assert public, "docs/deployment.md no longer says which routes must be public"
    for path in ("/webhooks/", "/r/", "/sms/twilio"):  # what the outside world calls
        assert f"`{path}" in public.group(1), f"{path} is not listed as public"


def test_every_command_the_docs_name_exists(gen: ModuleType) -> None:
    commands = {" ".join(path) for path, _ in gen.command_paths()}
    groups = {" ".join(path) for path, c in gen.command_paths() if hasattr(c, "commands")}
    missing = []
    for where, text in DOCS.items():
        for words in re.findall(r"`blippsync ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)*)", text):
            parts = words.split()
            named = next((" ".join(parts[:n]) for n in range(len(parts), 0, -1)
                          if " ".join(parts[:n]) in commands), None)
            if named is None or (named in groups and len(parts) > len(named.split())):
                missing.append(f"{where}: `blippsync {words}`")
    assert missing == []


def test_documented_defaults_are_the_defaults() -> None:
    """`key` (value unit) in the prose states the setting's default; every dotted key
    named in backticks under a settings section is a real setting."""
    seconds = {"s": 1, "h": 3600}
    sections = {s.key.split(".", 1)[0] for s in SETTINGS}
    wrong, unknown = [], []
    for where, text in DOCS.items():
        for key, value, unit in re.findall(r"`([a-z_]+\.[a-z_]+)` \((\d+(?:\.\d+)?) ?(s|h|%)?\)",
                                           text):
            setting = SETTINGS_BY_KEY.get(key)
            if setting is None:
                continue
            stated = float(value) / 100 if unit == "%" else float(value)
            if unit in seconds:  # in the setting's own unit (its name ends in it)
                stated *= seconds[unit] / (3600 if key.endswith("_hours") else 1)
            if stated != pytest.approx(float(setting.default)):
                wrong.append(f"{where}: {key} ({value} {unit}) but the default is "
                             f"{setting.default}")
        for key in re.findall(r"`([a-z_]+\.[a-z_]+)(?:\.<[a-z]+>)?`", text):
            if key.split(".")[0] in sections and key not in SETTINGS_BY_KEY \
                    and not _is_code(key):
                unknown.append(f"{where}: `{key}`")
    assert wrong == [] and unknown == []


def _is_code(dotted: str) -> bool:
    """`database.driver_connection` names a function, not a setting."""
    module, _, name = dotted.partition(".")
    try:
        return hasattr(importlib.import_module(f"blippsync.{module}"), name)
    except ImportError:
        return False


def test_deployment_settings_table_is_generated(gen: ModuleType) -> None:
    assert _between(DEPLOYMENT, gen.DEPLOY_BEGIN, gen.DEPLOY_END) == gen.service_table(), \
        f"docs/deployment.md's settings table is stale: {FIX}"


def test_every_hook_is_documented_and_every_documented_hook_exists() -> None:
    from blippsync import hookspecs

    specs = {name for name in dir(hookspecs)
             if hasattr(getattr(hookspecs, name), "blippsync_spec")}
    assert len(specs) >= 4, specs
    guide = DOCS["docs/writing-a-connector.md"]
    table = guide[guide.index("## Hooks"):]
    for name in specs:
        spec = inspect.signature(getattr(hookspecs, name))
        row = f"| `{name}({', '.join(spec.parameters)})` |"
        assert row in table, f"docs/writing-a-connector.md does not document {row}"
        assert getattr(hookspecs, name).__doc__.strip(), f"hookspecs.{name} has no docstring"
    named = set()
    for text in DOCS.values():
        named |= set(re.findall(r"`(register_[a-z_]+|[a-z_]+_finished)\b", text))
    assert named <= specs, f"the docs name hooks that do not exist: {named - specs}"


def test_the_jobber_pacing_claim_matches_its_test() -> None:
    claim = re.search(r"backfill test finishes within (\d+)% of the\s+bucket's theoretical "
                      r"minimum", DOCS["docs/jobber.md"])
    bound = re.search(r"elapsed <= minimum \* (\d+\.\d+)",
                      (REPO / "tests" / "test_jobber_throttle.py").read_text())
    assert claim and bound
    assert int(claim.group(1)) == round((float(bound.group(1)) - 1) * 100)
