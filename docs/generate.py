"""Generate the pages of the docs site that must not drift from the code.

`make docs` runs `python -m docs.generate` before the site build. It writes, into
`docs/generated/` (ignored by git):

- `targets.md`: the Makefile targets with their `## ` descriptions, as `make help` lists them;
- `settings.md`: every setting of `Settings`, `ServerSettings` and `IdentitySettings`, with its
  type, default, limits and the comment above it in the source;
- `openapi.json`: the OpenAPI document of `create_app()`, exactly as `/openapi.json` serves it;
- `http-api.md`: that document as Markdown (operations, parameters, responses, schemas), so the
  site shows it without Swagger UI or ReDoc and their CDN.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from app.core.config import ServerSettings, Settings
from app.identity.settings import IdentitySettings

GENERATED = Path(__file__).parent / "generated"
MAKEFILE = Path(__file__).parent.parent / "Makefile"
_TARGET_LINE = re.compile(r"^([a-zA-Z_-]+):.*## (.*)$")
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (Settings, IdentitySettings, ServerSettings)
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:")
_LIMITS = {
    annotated_types.Gt: ("gt", "> {}"),
    annotated_types.Ge: ("ge", ">= {}"),
    annotated_types.Lt: ("lt", "< {}"),
    annotated_types.Le: ("le", "<= {}"),
    annotated_types.MinLen: ("min_length", "at least {} characters"),
}


def field_comments(settings_class: type[BaseSettings]) -> dict[str, str]:
    """Return the comment lines written right above each field of `settings_class`."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(settings_class).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = _FIELD_LINE.match(line)
        if match and match.group(1) in settings_class.model_fields:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def type_name(annotation: Any) -> str:
    """Describe a field's type the way an operator sets it in the environment."""
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(parts) + " (optional)"
    if origin is tuple:
        return "comma-separated list"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def limits(field: FieldInfo) -> str:
    """Describe the numeric and length limits pydantic enforces on `field`."""
    found = []
    for constraint in field.metadata:
        for kind, (attribute, text) in _LIMITS.items():
            if isinstance(constraint, kind):
                found.append(text.format(getattr(constraint, attribute)))
    return ", ".join(found)


def default_text(field: FieldInfo) -> str:
    """Render a field's default, or say that the setting is required."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "not set"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, tuple):
        return "empty" if not value else f"`{','.join(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_rows(settings_class: type[BaseSettings]) -> list[tuple[str, str, str, str, str]]:
    """Return (variable, type, default, limits, description) for every field of a class."""
    comments = field_comments(settings_class)
    return [
        (
            name.upper(),
            type_name(field.annotation),
            default_text(field),
            limits(field),
            comments.get(name, ""),
        )
        for name, field in settings_class.model_fields.items()
    ]


def settings_page() -> str:
    """Render one table per settings class."""
    lines: list[str] = []
    for settings_class in SETTINGS_CLASSES:
        module = settings_class.__module__
        summary = (inspect.getdoc(settings_class) or "").splitlines()[0]
        lines += [
            f"## {settings_class.__name__}",
            "",
            f"`{module}.{settings_class.__name__}`: {summary}",
            "",
            "| variable | type | default | limits | what it is for |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            "| " + " | ".join(cell or " " for cell in row) + " |"
            for row in settings_rows(settings_class)
        ]
        lines.append("")
    return "\n".join(lines)


def targets_page(makefile: Path = MAKEFILE) -> str:
    """Render the Makefile targets that have a `## ` description, as `make help` lists them."""
    lines = ["| target | what it does |", "| --- | --- |"]
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = _TARGET_LINE.match(line)
        if match:
            lines.append(f"| `make {match.group(1)}` | {_cell(match.group(2))} |")
    return "\n".join(lines) + "\n"


def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI document from `create_app`, with placeholder connection settings.

    Nothing connects: the document is built without running the app's lifespan.
    """
    from app.main import create_app  # importing the app configures logging

    settings = Settings(_env_file=None, database_url="postgresql://x@localhost/x")
    identity = IdentitySettings(
        _env_file=None,
        oidc_issuer="https://issuer.example",
        oidc_audience="groundwork",
    )
    return create_app(settings, identity).openapi()


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|") or " "


def schema_type(schema: dict[str, Any]) -> str:
    """Describe a JSON schema in a few words: a type, a referenced schema, or a union."""
    if "$ref" in schema:
        return "`" + schema["$ref"].rsplit("/", 1)[-1] + "`"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " or ".join(schema_type(option) for option in schema[combinator])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} `{path}`", "", f"**{operation.get('summary', '')}**", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    schemes = [
        f"`{scheme}` ({', '.join(f'`{scope}`' for scope in scopes) or 'any valid token'})"
        for requirement in operation.get("security", [])
        for scheme, scopes in requirement.items()
    ]
    if schemes:
        lines += ["Authorization, any of: " + ", ".join(schemes) + ".", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += [
            "| parameter | in | type | required | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{p['name']}` | {p['in']} | {schema_type(p.get('schema', {}))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            for p in parameters
        ]
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media_type, content in body.get("content", {}).items():
            lines += [
                f"Request body (`{media_type}`): {schema_type(content.get('schema', {}))}",
                "",
            ]
    lines += ["| status | description | body |", "| --- | --- | --- |"]
    for status, response in operation.get("responses", {}).items():
        bodies = ", ".join(
            f"{schema_type(content.get('schema', {}))} (`{media_type}`)"
            for media_type, content in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {_cell(response.get('description'))} | {bodies or ' '} |")
    lines.append("")
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{field}` | {schema_type(spec)} | {'yes' if field in required else 'no'} | "
            f"{_cell(spec.get('description'))} |"
            for field, spec in properties.items()
        ]
        lines.append("")
    elif "enum" in schema:
        lines += ["One of " + ", ".join(f"`{value}`" for value in schema["enum"]) + ".", ""]
    return lines


def http_api_page(document: dict[str, Any]) -> str:
    """Render the operations and schemas of an OpenAPI document as Markdown."""
    info = document["info"]
    lines = [f"OpenAPI {document['openapi']}, {info['title']} {info['version']}.", ""]
    lines += ["## Operations", ""]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            lines += _operation(method, path, operation)
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += _schema(name, schema)
    return "\n".join(lines)


def main(output: Path = GENERATED) -> None:
    """Write every generated page into `output` (by default `docs/generated/`)."""
    output.mkdir(exist_ok=True)
    document = openapi_document()
    (output / "settings.md").write_text(settings_page(), encoding="utf-8")
    (output / "targets.md").write_text(targets_page(), encoding="utf-8")
    (output / "openapi.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    (output / "http-api.md").write_text(http_api_page(document), encoding="utf-8")


if __name__ == "__main__":
    main()
