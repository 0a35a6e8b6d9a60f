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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
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


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_text_env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                          finalize=_finalize)
_html_env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True,
                                          finalize=_finalize)


class TemplateProblem(ValueError):
    """A template that cannot be used; the message says why."""


def check_template(source: str) -> None:
    """Raise TemplateProblem for a syntax error, an unknown variable or attribute, anything
    the sandbox refuses, or a template that fails to render with sample values."""
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
    render(source, SAMPLE)
    render_html(source, SAMPLE)


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


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render as plain text; a failure raises TemplateProblem naming the cause."""
    return _run(_compiled_text, source, variables).strip()


def render_html(source: str, variables: Mapping[str, Any]) -> Markup:
    """Render as an HTML fragment: every value escaped, links as anchors, blank-line
    separated paragraphs as <p>, single line breaks as <br>."""
    html = _run(_compiled_html, source, _html_values(variables)).strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", html) if p.strip()]
    return Markup("\n".join(f"<p>{p.replace(chr(10), '<br>' + chr(10))}</p>"
                            for p in paragraphs))


def _run(compile_: Any, source: str, variables: Mapping[str, Any]) -> str:
    try:
        return str(compile_(source).render(variables))
    except SecurityError as exc:
        raise TemplateProblem(f"template does something the sandbox forbids: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template needs a value it does not have: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template failed: {exc}") from None
    except Exception as exc:  # e.g. a filter given the wrong type: still the template's fault
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None


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
