"""The schema registry: every JSON Schema document of the hub, loaded once and compiled.

Schemas live as files in ``schemas/json/NAME.schema.json``; they are the one source of
truth for the shape of every record that crosses a zone or leaves the hub.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource

CATEGORY_CODES = ("XK", "CF", "ZS", "QZ", "JL", "QR", "CJ", "QT", "SP", "GF", "ZY")
CATEGORY_SCHEMA_NAMES = tuple(f"power_item_{code.lower()}" for code in CATEGORY_CODES)
SCHEMA_NAMES = (
    "application",
    "status_event",
    "reason",
    "power_item",
    *CATEGORY_SCHEMA_NAMES,
    "form",
    "catalogue_change",
    "catalogue_change_set",
    "public_catalogue_item",
    "province_case",
    "province_step",
    "province_result",
    "province_penalty",
    "province_alert",
    "province_filing",
    "province_correction",
    "province_catalogue_change",
    "province_manifest",
    "province_receipt",
    "disclosure_record",
)


def category_schema_name(category: str) -> str:
    """The schema holding the mandatory disclosure fields of a power category (事项类别)."""
    name = f"power_item_{category.lower()}"
    if name not in CATEGORY_SCHEMA_NAMES:
        raise KeyError(f"no power category {category!r}")
    return name


@dataclass(frozen=True)
class SchemaError:
    """One schema violation: where it is (JSON pointer) and what is wrong."""

    path: str
    keyword: str
    message: str


def _json_pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema document called ``name`` (one of ``SCHEMA_NAMES``)."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"no schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files(__package__).joinpath(f"json/{name}.schema.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _registry() -> Registry[Any]:
    resources_ = [
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in SCHEMA_NAMES
    ]
    registry: Registry[Any] = Registry().with_resources(resources_)
    return registry


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A full validator for ``name`` that reports every violation with its location."""
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


@cache
def _compiled(name: str) -> Any:
    """The jsonschema-rs validator of ``name``; references to the hub's other schemas
    (``urn:pehub:...``) resolve from the registry's own files."""
    return jsonschema_rs.validator_for(load_schema(name), validate_formats=True, retriever=_schema_by_id)


@cache
def fast_check(name: str) -> Callable[[Any], bool]:
    """A compiled yes/no check for the accept path; use ``errors`` only when it says no."""
    check: Callable[[Any], bool] = _compiled(name).is_valid
    return check


def _schema_by_id(uri: str) -> dict[str, Any]:
    """Resolves references between the hub's schemas (``urn:pehub:...``) for the compiled
    checks, from the registry's own files; nothing is fetched from anywhere else."""
    for name in SCHEMA_NAMES:
        if load_schema(name)["$id"] == uri:
            return load_schema(name)
    raise KeyError(f"no schema with $id {uri!r}")


def errors(name: str, instance: Any) -> Iterator[SchemaError]:
    """Every violation of schema ``name`` by ``instance``, in document order."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    for error in found:
        yield SchemaError(_json_pointer(error.absolute_path), str(error.validator), error.message)


def compiled_errors(compiled: Any, instance: Any) -> Iterator[SchemaError]:
    """The violations a jsonschema-rs validator finds, in document order."""
    found = sorted(compiled.iter_errors(instance), key=lambda e: [str(p) for p in e.instance_path])
    for error in found:
        keyword = str(error.schema_path[-1]) if error.schema_path else ""
        yield SchemaError(_json_pointer(error.instance_path), keyword, error.message)


def fast_errors(name: str, instance: Any) -> Iterator[SchemaError]:
    """The violations that ``fast_check`` itself finds.

    For the rare record the compiled check refuses while ``errors`` finds nothing: the two
    engines differ at the edges (Python's ``re`` lets ``$`` match before a final newline,
    and without the optional rfc3339-validator package the Python validator does not check
    ``date-time``). A caller that gets nothing from ``errors`` after ``fast_check`` said no
    takes these, so a refused record always has a reason.
    """
    yield from compiled_errors(_compiled(name), instance)
