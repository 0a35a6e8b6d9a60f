"""Message templates: Jinja2 in an immutable sandbox, checked at apply time, rendered per send.

The sandbox keeps a template written in the web app from reaching Python internals (or
mutating the values it is given); `StrictUndefined` turns a typo that slipped past
validation into a failed step rather than a message with a hole in it. Validation knows
every variable and attribute a template may use, and renders the template once, in the
same sandbox, with sample values, so `{{ customer.frist_name }}`, an unknown filter or
`{{ ''.__class__ }}` is an error when the sequence is applied, not at send time.

A template is plain text. The HTML part of an email is rendered from the same template by
an autoescaping environment in which the template's own text is escaped too, so neither a
customer's name nor a literal "<" can become markup; links become anchors.

Rendering runs on a budget (`RenderBudget`): at most so many seconds and characters. A
template that loops for minutes or writes hundreds of megabytes fails its own step with
the reason, instead of holding the executor and every other tenant's messages. The
output is streamed and measured as it grows; operations that could build a huge string
in one step (`*`, `**`, `center`, `indent`, `replace`, `lipsum`) are bounded up front; a
loop that writes nothing is stopped by a watchdog that raises in the rendering thread
when the time is up. Validation renders every template once with sample values on the
same budget, so such a template is refused when it is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import filters, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

# Every variable a template may use, with the attributes each offers (None: a plain value).
VARIABLES: dict[str, frozenset[str] | None] = {
    "customer": frozenset({"name", "first_name", "last_name", "email", "phone"}),
    "business": frozenset({"name", "phone", "website_url", "google_review_url",
                           "postal_address"}),
    "review_link": None,        # per-request link to the public review form (same for everyone)
    "feedback_link": None,      # optional private-feedback link (an extra option, never a gate)
    "google_review_url": None,
    "unsubscribe_link": None,   # email only: this message's one-click unsubscribe page
}
# What validation renders every template with (every variable set, as at send time).
SAMPLE: dict[str, Any] = {
    "customer": {"name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
                 "email": "ada@example.com", "phone": "+12125550123"},
    "business": {"name": "Sample Plumbing", "phone": "+12125550100",
                 "website_url": "https://plumbing.example", "postal_address": "1 Main St",
                 "google_review_url": "https://g.page/r/sample/review"},
    "review_link": "https://sync.example/r/sample", "feedback_link": "https://sync.example/f/s",
    "google_review_url": "https://g.page/r/sample/review",
    "unsubscribe_link": "https://sync.example/u/sample",
}
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


MAX_POWER_EXPONENT = 64


class TemplateProblem(ValueError):
    """A template that cannot be used; the message says why."""


@dataclass(frozen=True)
class RenderBudget:
    """What one template may cost: wall time and output length."""

    seconds: float = 2.0
    max_chars: int = 100_000


DEFAULT_BUDGET = RenderBudget()


class _OverBudget(Exception):
    """Raised inside a render that went past its budget (by the watchdog or a size check)."""


_budget = threading.local()  # the budget of the render running on this thread


def _max_chars() -> int:
    return int(getattr(_budget, "max_chars", RenderBudget.max_chars))


def _sized(length: int) -> None:
    if length > _max_chars():
        raise _OverBudget(f"it would write more than {_max_chars():,} characters")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with the operators that can build a huge value in one step bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _sized(len(seq) * times)
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
            raise _OverBudget(f"an exponent above {MAX_POWER_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def _center(value: Any, width: int = 80) -> str:
    _sized(int(width))
    return filters.do_center(value, width)


def _indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    _sized(len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str)
                                                  else int(width)))
    return filters.do_indent(text, width, first, blank)


def _replace(context: Any, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_s, new_s = str(value), str(old), str(new)
    hits = text.count(old_s) if old_s else len(text) + 1
    _sized(len(text) + hits * max(0, len(new_s) - len(old_s)))
    return filters.do_replace(context, value, old, new, count)


_replace.jinja_pass_arg = filters.do_replace.jinja_pass_arg  # type: ignore[attr-defined]

def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _sandbox(autoescape: bool) -> _BoundedSandbox:
    env = _BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=autoescape,
                          finalize=_finalize)
    env.filters.update(center=_center, indent=_indent, replace=_replace)
    env.globals.pop("lipsum", None)
    return env


_text_env = _sandbox(autoescape=False)
_html_env = _sandbox(autoescape=True)


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Raise _OverBudget in this thread if the block runs longer than `seconds`.

    Python checks for such an asynchronous exception between bytecodes, so even a loop
    that writes nothing is stopped; a pending one is withdrawn if the block ends first."""
    thread_id = threading.get_ident()
    guard = threading.Lock()
    state = {"running": True, "fired": False}

    def fire() -> None:
        with guard:
            if state["running"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                           ctypes.py_object(_OverBudget))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with guard:
            state["running"] = False
            if state["fired"]:  # raised already, or about to be: withdraw it
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


def check_template(source: str, budget: RenderBudget = DEFAULT_BUDGET) -> None:
    """Raise TemplateProblem for a syntax error, an unknown variable or attribute, anything
    the sandbox refuses, or a template that cannot render sample values within `budget`."""
    try:
        tree = _text_env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: "
                              f"{exc.message}") from None
    _check_names(tree)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else \
            getattr(getattr(node, "arg", None), "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(f"template reaches for {name!r}: attributes starting with _ "
                                  "are Python internals the sandbox forbids")
    render(source, SAMPLE, budget)
    render_html(source, SAMPLE, budget)


def _check_names(tree: nodes.Template) -> None:
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in VARIABLES and name.name not in assigned:
            known = ", ".join(sorted(VARIABLES))
            raise TemplateProblem(f"unknown template variable '{name.name}' (known: {known})")
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name in VARIABLES:
            allowed = VARIABLES[attr.node.name]
            if allowed is None or attr.attr not in allowed:
                known = ", ".join(sorted(allowed or ()))
                raise TemplateProblem(f"unknown template variable '{attr.node.name}.{attr.attr}'"
                                      + (f" (known: {known})" if known else ""))


MESSAGE_KEYS = frozenset({"subject", "body", "text"})


def check_message_config(config: Any, budget: RenderBudget = DEFAULT_BUDGET) -> None:
    """A step's message_config as any writer may have left it: an object of template
    strings (subject, body, text), each valid and renderable within `budget`."""
    if not isinstance(config, Mapping):
        raise TemplateProblem("message_config must be an object of templates")
    for key, source in config.items():
        if key not in MESSAGE_KEYS:
            continue  # the web app may keep its own keys beside ours
        if not isinstance(source, str):
            raise TemplateProblem(f"{key} must be a string, not {type(source).__name__}")
        try:
            check_template(source, budget)
        except TemplateProblem as exc:
            raise TemplateProblem(f"{key}: {exc}") from None


@lru_cache(maxsize=4096)
def _compiled_text(source: str) -> jinja2.Template:
    return _text_env.from_string(source)


@lru_cache(maxsize=4096)
def _compiled_html(source: str) -> jinja2.Template:
    """The template with its literal text escaped (and its URLs linked) before compiling:
    autoescaping covers the values, this covers the author's own text."""
    tree = _html_env.parse(source)
    for data in tree.find_all(nodes.TemplateData):
        data.data = str(linkify(escape(data.data)))
    return _html_env.from_string(tree)


def render(source: str, variables: Mapping[str, Any],
           budget: RenderBudget = DEFAULT_BUDGET) -> str:
    """Render as plain text within `budget`; a failure raises TemplateProblem naming why."""
    return _run(_compiled_text, source, variables, budget).strip()


def render_html(source: str, variables: Mapping[str, Any],
                budget: RenderBudget = DEFAULT_BUDGET) -> Markup:
    """Render as an HTML fragment within `budget`: every value escaped, links as anchors,
    blank-line separated paragraphs as <p>, single line breaks as <br>."""
    html = _run(_compiled_html, source, _html_values(variables), budget).strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", html) if p.strip()]
    return Markup("\n".join(f"<p>{p.replace(chr(10), '<br>' + chr(10))}</p>"
                            for p in paragraphs))


def _run(compile_: Callable[[str], jinja2.Template], source: str,
         variables: Mapping[str, Any], budget: RenderBudget) -> str:
    """Stream the output, measuring it against the budget as it grows."""
    started = time.monotonic()
    parts: list[str] = []
    length = 0
    _budget.max_chars = budget.max_chars
    try:
        template = compile_(source)  # an unknown filter is found here, when compiling
        with _watchdog(budget.seconds):
            for part in template.generate(variables):
                parts.append(part)
                length += len(part)
                if length > budget.max_chars:
                    raise _OverBudget(f"it writes more than {budget.max_chars:,} characters")
                if time.monotonic() - started > budget.seconds:
                    raise _OverBudget(f"it takes more than {budget.seconds:g}s")
    except _OverBudget as exc:
        why = str(exc) or f"it takes more than {budget.seconds:g}s"
        raise TemplateProblem(f"template is too expensive to render: {why}") from None
    except SecurityError as exc:
        raise TemplateProblem(f"template does something the sandbox forbids: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template needs a value it does not have: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template failed: {exc}") from None
    except Exception as exc:  # e.g. a filter given the wrong type: still the template's fault
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


def linkify(text: Markup) -> Markup:
    """Turn the http(s) URLs of already-escaped text into anchors."""
    return Markup(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', str(text)))


def _html_values(values: Any) -> Any:
    """The same values, with URLs pre-rendered as anchors (escaped, so still safe)."""
    if isinstance(values, Mapping):
        return {k: _html_values(v) for k, v in values.items()}
    if isinstance(values, str) and _URL.fullmatch(values):
        return linkify(escape(values))
    return values
