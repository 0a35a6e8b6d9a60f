"""Message templates: Jinja2 in a sandbox, checked at apply time, rendered per send.

The sandbox keeps a template written in the web app from reaching Python internals;
`StrictUndefined` turns a typo that slipped past validation into a failed step rather
than a message with a hole in it. Validation knows every variable and attribute a
template may use, so `{{ customer.frist_name }}` is an error when the sequence is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

# Every variable a template may use, with the attributes each offers (None: a plain value).
VARIABLES: dict[str, frozenset[str] | None] = {
    "customer": frozenset({"name", "first_name", "last_name", "email", "phone"}),
    "business": frozenset({"name", "phone", "website_url", "google_review_url"}),
    "review_link": None,        # per-request link to the public review form (same for everyone)
    "feedback_link": None,      # optional private-feedback link (an extra option, never a gate)
    "google_review_url": None,
}

_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                            finalize=lambda value: "" if value is None else value)


class TemplateProblem(ValueError):
    """A template that cannot be used; the message says why."""


def check_template(source: str) -> None:
    """Raise TemplateProblem for a syntax error or an unknown variable or attribute."""
    try:
        tree = _env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on line {exc.lineno}: "
                              f"{exc.message}") from None
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
def _compiled(source: str) -> jinja2.Template:
    return _env.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render; a failure raises TemplateProblem naming the cause."""
    try:
        return _compiled(source).render(variables).strip()
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template needs a value it does not have: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template failed: {exc}") from None
