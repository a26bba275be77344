"""Just enough ``multipart/form-data`` parsing for ``POST /v1/files`` (the SDKs' uploads)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FormError", "FormField", "parse_form"]

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class FormError(ValueError):
    """A body that is not the multipart form it claims to be."""


@dataclass(slots=True)
class FormField:
    name: str
    data: bytes
    filename: str | None = None


def parse_form(content_type: str, body: bytes) -> dict[str, FormField]:
    """The fields of a multipart body, by name; :class:`FormError` says what is wrong."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise FormError(f"expected a multipart/form-data body, not {content_type or 'no content type'!r}")
    m = _BOUNDARY.search(content_type)
    if m is None:
        raise FormError("the multipart/form-data content type has no boundary")
    delimiter = b"--" + m.group(1).encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise FormError("the multipart body does not contain its boundary")
    fields: dict[str, FormField] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise FormError("a multipart part has no blank line after its headers")
        disposition = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        params = dict(_PARAM.findall(disposition))
        if "name" not in params:
            raise FormError("a multipart part has no Content-Disposition name")
        field = FormField(params["name"], data.removesuffix(b"\r\n"), params.get("filename"))
        fields[field.name] = field
    return fields
