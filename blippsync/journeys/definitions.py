"""Sequences as data: the shape a sequence file describes, and its validation.

A file (TOML, YAML or JSON) holds an optional [business] table and a list of sequences,
each with settings and ordered steps. Every problem is reported as one line naming the
file, the sequence and the step, at apply time, never at 3 a.m. when the step runs.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from blippsync.errors import InputError
from blippsync.journeys.hours import parse_window
from blippsync.journeys.templates import TemplateProblem, check_template

STEP_TYPES = ("email", "sms", "wait", "trigger")  # the spec's sequence_steps.step_type
CHANNELS = ("email", "sms")
PURPOSES = ("thank_you", "follow_up", "review", "rebooking", "retention", "upsell")
STATUSES = ("active", "paused", "draft", "archived")
ON_FAILURE = ("continue", "stop")
SETTING_KEYS = {"cooldown_days": int, "email_hours": str, "sms_hours": str,
                "on_step_failure": str, "review_cap": bool}
# What one file may hold: generous for any real journey, small enough that a mistaken or
# hostile file cannot fill the web app's tables or a message with megabytes.
MAX_FILE_BYTES = 1_048_576
MAX_SEQUENCES_PER_FILE = 100
MAX_STEPS_PER_SEQUENCE = 50
MAX_NAME_CHARS = 200
MAX_CHARS = {"subject": 300, "body": 50_000, "text": 1_600}  # 1,600: Twilio's SMS maximum
_STEP_KEYS = {"type", "delay_minutes", "purpose", "channel", "subject", "body", "text"}
T = TypeVar("T")
_SEQUENCE_KEYS = {"name", "trigger_source", "trigger_event_type", "status", "settings", "steps"}


@dataclass(frozen=True)
class StepSpec:
    order: int
    type: str
    delay_minutes: int
    purpose: str | None
    channel: str | None
    message_config: Mapping[str, Any]


@dataclass(frozen=True)
class SequenceSpec:
    name: str
    trigger_source: str
    trigger_event_type: str
    status: str
    settings: Mapping[str, Any]
    steps: tuple[StepSpec, ...]

    def flow_definition(self) -> dict[str, Any]:
        """The web app's flow graph, kept consistent with the steps: a straight line."""
        nodes: list[dict[str, Any]] = [{"id": "trigger", "type": "trigger",
                                        "source": self.trigger_source,
                                        "event": self.trigger_event_type}]
        for step in self.steps:
            nodes.append({"id": f"step-{step.order}", "type": step.type, "order": step.order,
                          "delay_minutes": step.delay_minutes, "purpose": step.purpose,
                          "channel": step.channel, **dict(step.message_config)})
        edges = [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]
        return {"version": 1, "nodes": nodes, "edges": edges}


@dataclass(frozen=True)
class SequenceFile:
    path: Path
    business: Mapping[str, Any]  # id, or name (+ owner_email, timezone... to create it)
    sequences: tuple[SequenceSpec, ...] = field(default_factory=tuple)


def load_sequence_file(path: str | Path,
                       known_events: Mapping[str, Collection[str]] | None = None) -> SequenceFile:
    """Read and validate a sequence file; InputError listing every problem, each naming its
    place. With `known_events` (connector -> declared events), triggers are checked too."""
    file = Path(path)
    raw = _read(file)
    where = str(file)
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a table with 'sequences'")
    unknown = set(raw) - {"business", "sequences"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                         "(expected 'business' and 'sequences')")
    business = raw.get("business") or {}
    if not isinstance(business, dict):
        raise InputError(f"{where}: 'business' must be a table")
    items = raw.get("sequences")
    if not isinstance(items, list) or not items:
        raise InputError(f"{where}: 'sequences' must be a non-empty list")
    if len(items) > MAX_SEQUENCES_PER_FILE:
        raise InputError(f"{where}: {len(items)} sequences; at most {MAX_SEQUENCES_PER_FILE} "
                         "per file")
    problems: list[str] = []
    parsed = [_collect(problems, parse_sequence, item, f"{where}: sequences[{i}]", known_events)
              for i, item in enumerate(items)]
    specs = tuple(spec for spec in parsed if spec is not None)
    names = [spec.name for spec in specs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: sequence {name!r} is defined twice")
    if len(problems) == 1:
        raise InputError(problems[0])
    if problems:
        raise InputError(f"{where}: {len(problems)} problems, nothing applied:\n"
                         + "\n".join(problems))
    return SequenceFile(path=file, business=business, sequences=specs)


def _read(file: Path) -> Any:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{file}: larger than {MAX_FILE_BYTES // 1024} KiB; a sequence file "
                         "holds journeys, not data")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: not UTF-8 text (a binary file?): byte {exc.start} "
                         f"is 0x{data[exc.start]:02x}") from None
    if "\x00" in text:
        raise InputError(f"{file}: contains a NUL byte at offset {text.index(chr(0))} "
                         "(a binary file?)")
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        if suffix == ".json":
            return json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{file}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        raise InputError(f"{file}: not valid YAML: {exc}") from None
    raise InputError(f"{file}: unknown format (use .toml, .yaml, .yml or .json)")


def parse_sequence(raw: Any, where: str,
                   known_events: Mapping[str, Collection[str]] | None = None) -> SequenceSpec:
    """One sequence; InputError listing every problem found in it (one per line).
    `known_events` (connector -> the events it declares) rejects triggers that can never
    fire."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a sequence must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: 'name' is required")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"{where}: 'name' is {len(name)} characters; at most {MAX_NAME_CHARS}")
    where = f"{where.rsplit(':', 1)[0]}: sequence {name.strip()!r}"
    problems: list[str] = []
    unknown = set(raw) - _SEQUENCE_KEYS
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("trigger_source", "trigger_event_type"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: '{key}' is required (for example 'csv' / "
                            "'job_completed')")
    if known_events is not None and not problems:
        problems.extend(_trigger_problems(raw["trigger_source"].strip(),
                                          raw["trigger_event_type"].strip(), known_events, where))
    status = raw.get("status", "active")
    if status not in STATUSES:
        problems.append(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
    settings = _collect(problems, _settings, raw.get("settings") or {}, where)
    steps_raw = raw.get("steps")
    steps: list[StepSpec] = []
    if not isinstance(steps_raw, list) or not steps_raw:
        problems.append(f"{where}: 'steps' must be a non-empty list")
    elif len(steps_raw) > MAX_STEPS_PER_SEQUENCE:
        problems.append(f"{where}: {len(steps_raw)} steps; at most {MAX_STEPS_PER_SEQUENCE}")
    else:
        for i, item in enumerate(steps_raw):
            step = _collect(problems, parse_step, item, i, f"{where}, step {i + 1}")
            if step is not None:
                steps.append(step)
    if problems:
        raise InputError("\n".join(problems))
    return SequenceSpec(name=name.strip(), trigger_source=raw["trigger_source"].strip(),
                        trigger_event_type=raw["trigger_event_type"].strip(), status=status,
                        settings=settings or {}, steps=tuple(steps))


def _trigger_problems(source: str, event: str, known: Mapping[str, Collection[str]],
                      where: str) -> list[str]:
    if source not in known:
        return [f"{where}: trigger_source {source!r} is no installed connector (installed: "
                f"{', '.join(sorted(known)) or 'none'}); the sequence could never start"]
    if event not in known[source]:
        return [f"{where}: connector {source!r} never emits {event!r} (it emits: "
                f"{', '.join(sorted(known[source])) or 'nothing'}); the sequence could never "
                "start"]
    return []


def _collect(problems: list[str], check: Callable[..., T], *args: Any) -> T | None:
    """Run one check; its InputError lines join `problems` instead of stopping the rest."""
    try:
        return check(*args)
    except InputError as exc:
        problems.extend(str(exc).splitlines())
        return None


def _settings(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'settings' must be a table")
    for key, value in raw.items():
        expected = SETTING_KEYS.get(key)
        if expected is None:
            raise InputError(f"{where}: unknown setting {key!r} "
                             f"(known: {', '.join(sorted(SETTING_KEYS))})")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InputError(f"{where}: setting {key!r} must be {expected.__name__}")
    if raw.get("cooldown_days", 0) < 0:
        raise InputError(f"{where}: setting 'cooldown_days' must not be negative")
    for key in ("email_hours", "sms_hours"):
        if key in raw:
            try:
                parse_window(raw[key])
            except ValueError as exc:
                raise InputError(f"{where}: setting {key!r}: {exc}") from None
    if raw.get("on_step_failure", "continue") not in ON_FAILURE:
        raise InputError(f"{where}: setting 'on_step_failure' must be continue or stop")
    return dict(raw)


def parse_step(raw: Any, order: int, where: str) -> StepSpec:
    """One step; InputError listing every problem found in it (one per line)."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a step must be a table")
    problems: list[str] = []
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = raw.get("type")
    if kind not in STEP_TYPES:
        raise InputError("\n".join([*problems, f"{where}: step type {kind!r} is not one of "
                                                f"{', '.join(STEP_TYPES)}"]))
    delay = raw.get("delay_minutes", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
        problems.append(f"{where}: delay_minutes must be a whole number of minutes >= 0, "
                        f"got {delay!r}")
    purpose = raw.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        problems.append(f"{where}: purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    channel = raw.get("channel", kind if kind in CHANNELS else None)
    if channel is not None and channel not in CHANNELS:
        problems.append(f"{where}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
    elif kind in CHANNELS and channel != kind:
        problems.append(f"{where}: a {kind} step cannot use channel {channel!r}")
    if kind not in CHANNELS and (channel or any(k in raw for k in ("subject", "body", "text"))):
        problems.append(f"{where}: a {kind} step sends nothing: remove "
                        "channel/subject/body/text")
    config: dict[str, Any] = {}
    wanted = {"sms": ("text",), "email": ("subject", "body")}.get(kind, ())
    for key in wanted:
        value = raw.get(key, raw.get("body")) if key == "text" else raw.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: an {kind} step needs '{key}'")
            continue
        if len(value) > MAX_CHARS[key]:
            problems.append(f"{where}: {key} is {len(value)} characters; at most "
                            f"{MAX_CHARS[key]}")
            continue
        config[key] = value
        try:
            check_template(value)
        except TemplateProblem as exc:
            problems.append(f"{where}: {key}: {exc}")
    if problems:
        raise InputError("\n".join(problems))
    return StepSpec(order=order, type=kind, delay_minutes=delay, purpose=purpose,
                    channel=channel, message_config=config)
