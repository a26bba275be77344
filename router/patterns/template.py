"""A tiny safe template language: ``{name}`` and ``{dotted.name}`` fields, ``{{`` and ``}}`` for braces.

Unlike ``str.format`` it has no attribute access, indexing or format specs, so a template from a
config file cannot reach into objects; an unknown field is an error that names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["TemplateError", "fields", "render"]

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w.-]*)\}")


class TemplateError(ValueError):
    """A template names a field that has no value."""


def fields(template: str) -> set[str]:
    """The field names a template uses."""
    return {m.group(1) for m in _FIELD.finditer(template) if m.group(1)}


def render(template: str, values: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        key = m.group(1)
        if key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise TemplateError(f"template field {{{key}}} has no value (known: {known})")
        return values[key]

    return _FIELD.sub(sub, template)
