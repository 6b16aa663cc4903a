"""The payout method catalog: methods, their additional fields and currencies, read from data.

The catalog lives in ``resources/catalog.json`` (see ``docs/catalog.md``) because the
gateway's own method lists disagree and change per merchant. It is validated on load, so a
broken file fails at start-up naming the file and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from cactus_desk.checks import CHECKS, normalize
from cactus_desk.gateway.signature import SEPARATOR, SEPARATOR_MESSAGE
from cactus_desk.money import Currency, currencies
from cactus_desk.resources import load_json

CATALOG_FILE = "catalog.json"

#: Rules a method may list, each tying several fields together.
RULES = {"asap_or_time": ("asap", "time")}

_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_TRUE, _FALSE = "true", "false"


class UnknownMethodError(KeyError):
    """A method name that is not in the catalog."""

    def __str__(self) -> str:
        return f"Unknown payout method: {self.args[0]!r}"


class CatalogError(ValueError):
    """The catalog data file is broken; the message names the file and the entry."""


@dataclass(frozen=True)
class FieldSpec:
    """One additional field of a method, with its exact wire name."""

    wire: str
    label: str
    required: bool
    example: str
    check: str
    help: str
    kind: Literal["text", "bool"] = "text"
    currencies: tuple[str, ...] | None = None

    @property
    def object_name(self) -> str:
        """A Qt object name for the field's widget: ``"expiry date"`` -> ``"field_expiry_date"``."""
        return "field_" + _NON_ALNUM.sub("_", self.wire)

    def shown_for(self, currency: str) -> bool:
        """True when this field applies to payouts in ``currency``."""
        return self.currencies is None or currency in self.currencies


@dataclass(frozen=True)
class MethodSpec:
    """A payout method: its wire name, the currencies it is offered for and its fields.

    ``documented`` is True for the gateway's documented payout list; the others are
    extensions that a profile must enable.
    """

    wire: str
    label: str
    currencies: tuple[str, ...]
    documented: bool
    fields: tuple[FieldSpec, ...]
    rules: tuple[str, ...] = ()

    def field(self, wire: str) -> FieldSpec:
        """Return the field with this wire name (``KeyError`` if the method has none)."""
        for spec in self.fields:
            if spec.wire == wire:
                return spec
        raise KeyError(wire)


class _Invalid(ValueError):
    """One problem in the catalog data: where (a path of keys and indexes) and what."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


# The shape of catalog.json, checked by hand: the catalog is read on the way to the usable
# window, which must not wait for pydantic. Strict types, no extra keys, and the messages
# pydantic gave for the same mistakes. Each key: (kind, required, minimum length).
_Shape = dict[str, tuple[str, bool, int]]
_FIELD_SHAPE: _Shape = {
    "wire": ("str", True, 1),
    "label": ("str", True, 1),
    "required": ("bool", True, 0),
    "example": ("str", True, 0),
    "check": ("check", True, 0),
    "help": ("str", False, 0),
    "kind": ("kind", False, 0),
    "currencies": ("str_list_or_none", False, 1),
}
_METHOD_SHAPE: _Shape = {
    "wire": ("str", True, 1),
    "label": ("str", True, 1),
    "documented": ("bool", True, 0),
    "currencies": ("str_list", True, 1),
    "fields": ("fields", True, 0),
    "rules": ("str_list", False, 0),
}


def _text(value: Any, loc: tuple[int | str, ...], minimum: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(loc, "Input should be a valid string")
    if len(value) < minimum:
        plural = "" if minimum == 1 else "s"
        raise _Invalid(loc, f"String should have at least {minimum} character{plural}")
    return value


def _items(value: Any, loc: tuple[int | str, ...], minimum: int) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(loc, "Input should be a valid list")
    if len(value) < minimum:
        plural = "" if minimum == 1 else "s"
        raise _Invalid(
            loc,
            f"List should have at least {minimum} item{plural} after validation, not {len(value)}",
        )
    return value


def _checked(data: Any, shape: _Shape, loc: tuple[int | str, ...]) -> dict[str, Any]:
    """``data`` checked against ``shape``: its values, the absent optional keys left out."""
    if not isinstance(data, dict):
        raise _Invalid(loc, "Input should be a valid dictionary")
    out: dict[str, Any] = {}
    for key, (kind, required, minimum) in shape.items():
        here = (*loc, key)
        if key not in data:
            if required:
                raise _Invalid(here, "Field required")
            continue
        value = data[key]
        if kind == "str":
            out[key] = _text(value, here, minimum)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise _Invalid(here, "Input should be a valid boolean")
            out[key] = value
        elif kind == "check":
            text = _text(value, here, 0)
            if text not in CHECKS:
                known = ", ".join(CHECKS)
                raise _Invalid(here, f"Value error, unknown check {text!r}; known: {known}")
            out[key] = text
        elif kind == "kind":
            if value not in ("text", "bool") or not isinstance(value, str):
                raise _Invalid(here, "Input should be 'text' or 'bool'")
            out[key] = value
        elif kind == "str_list_or_none" and value is None:
            out[key] = None
        elif kind in ("str_list", "str_list_or_none"):
            items = _items(value, here, minimum)
            out[key] = [_text(item, (*here, i), 0) for i, item in enumerate(items)]
        else:  # "fields"
            items = _items(value, here, minimum)
            out[key] = [_checked(item, _FIELD_SHAPE, (*here, i)) for i, item in enumerate(items)]
    for key in data:
        if key not in shape:
            raise _Invalid((*loc, key), "Extra inputs are not permitted")
    return out


def _parse(data: Any) -> list[dict[str, Any]]:
    """The methods of the catalog's JSON, shape-checked; raises ``_Invalid`` at the first fault."""
    if not isinstance(data, dict):
        raise _Invalid((), "Input should be a valid dictionary")
    if "methods" not in data:
        raise _Invalid(("methods",), "Field required")
    methods = _items(data["methods"], ("methods",), 1)
    parsed = [_checked(raw, _METHOD_SHAPE, ("methods", i)) for i, raw in enumerate(methods)]
    for key in data:
        if key != "methods":
            raise _Invalid((key,), "Extra inputs are not permitted")
    return parsed


def _entry_name(data: Any, loc: tuple[int | str, ...]) -> str:
    """Name the method (and field) an error location points at, e.g. ``cash / time``."""
    names: list[str] = []
    node = data
    for step in loc:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("wire"), str):
            names.append(repr(node["wire"]))
    return " / ".join(names)


def _check_consistency(method: dict[str, Any], known: Mapping[str, Currency]) -> None:
    for code in method["currencies"]:
        if code not in known:
            raise ValueError(f"currency {code!r} is not in currencies.json")
    wires = [spec["wire"] for spec in method["fields"]]
    if len(set(wires)) != len(wires):
        raise ValueError("a field wire name is listed twice")
    for spec in method["fields"]:
        extra = set(spec.get("currencies") or ()) - set(method["currencies"])
        if extra:
            raise ValueError(f"field {spec['wire']!r} lists currencies the method lacks: {extra}")
        if spec.get("kind", "text") == "bool" and spec["check"] != "flag":
            raise ValueError(f"bool field {spec['wire']!r} must use the 'flag' check")
    for rule in method.get("rules", ()):
        needed = RULES.get(rule)
        if needed is None:
            raise ValueError(f"unknown rule {rule!r}; known: {', '.join(RULES)}")
        if not set(needed) <= set(wires):
            raise ValueError(f"rule {rule!r} needs the fields {', '.join(needed)}")


class Catalog:
    """The methods the console offers, looked up and validated by wire name."""

    def __init__(self, methods: Iterable[MethodSpec], currency_table: Mapping[str, Currency]):
        self.methods: tuple[MethodSpec, ...] = tuple(methods)
        self.currencies: dict[str, Currency] = dict(currency_table)
        self._by_wire = {spec.wire: spec for spec in self.methods}
        # (method, currency) -> its fields: a batch asks the same few thousands of times.
        self._fields_for: dict[tuple[str, str], tuple[FieldSpec, ...]] = {}

    @classmethod
    def from_data(cls, data: Any, source: str = CATALOG_FILE) -> Catalog:
        """Build a catalog from parsed JSON; raise ``CatalogError`` naming what is wrong."""
        try:
            parsed = _parse(data)
        except _Invalid as exc:
            where = ".".join(str(step) for step in exc.loc) or "(top level)"
            entry = _entry_name(data, exc.loc)
            entry = f" ({entry})" if entry else ""
            raise CatalogError(f"{source}: {where}{entry}: {exc.message}") from None
        known = currencies()
        methods: list[MethodSpec] = []
        seen: set[str] = set()
        for index, raw in enumerate(parsed):
            try:
                if raw["wire"] in seen:
                    raise ValueError("this method is listed twice")
                _check_consistency(raw, known)
            except ValueError as exc:
                raise CatalogError(f"{source}: methods.{index} ({raw['wire']!r}): {exc}") from None
            seen.add(raw["wire"])
            fields = tuple(
                FieldSpec(
                    wire=spec["wire"],
                    label=spec["label"],
                    required=spec["required"],
                    example=spec["example"],
                    check=spec["check"],
                    help=spec.get("help", ""),
                    kind=spec.get("kind", "text"),
                    currencies=tuple(spec["currencies"]) if spec.get("currencies") else None,
                )
                for spec in raw["fields"]
            )
            methods.append(
                MethodSpec(
                    wire=raw["wire"],
                    label=raw["label"],
                    currencies=tuple(raw["currencies"]),
                    documented=raw["documented"],
                    fields=fields,
                    rules=tuple(raw.get("rules", ())),
                )
            )
        return cls(methods, known)

    def method(self, wire: str) -> MethodSpec:
        """Return the method with this wire name; raise ``UnknownMethodError`` if there is none."""
        try:
            return self._by_wire[wire]
        except (KeyError, TypeError):
            raise UnknownMethodError(wire) from None

    def _spec(self, method: MethodSpec | str) -> MethodSpec:
        return method if isinstance(method, MethodSpec) else self.method(method)

    def methods_for(self, currency: str, extensions: Iterable[str] = ()) -> tuple[MethodSpec, ...]:
        """Methods offered for ``currency``: the documented ones plus the enabled extensions."""
        enabled = set(extensions)
        return tuple(
            spec
            for spec in self.methods
            if currency in spec.currencies and (spec.documented or spec.wire in enabled)
        )

    def fields_for(self, method: MethodSpec | str, currency: str) -> tuple[FieldSpec, ...]:
        """The fields a payout by ``method`` in ``currency`` shows, in catalog order."""
        spec = self._spec(method)
        mine = isinstance(currency, str) and self._by_wire.get(spec.wire) is spec
        known = self._fields_for.get((spec.wire, currency)) if mine else None
        if known is not None:
            return known
        shown = tuple(field for field in spec.fields if field.shown_for(currency))
        if mine:
            self._fields_for[spec.wire, currency] = shown
        return shown

    def validate_fields(
        self, method: MethodSpec | str, currency: str, values: Mapping[str, str | bool]
    ) -> dict[str, str]:
        """Check the additional fields; return messages keyed by wire name (empty when valid).

        Keys that are not fields of the method for this currency are ignored.
        """
        return self.checked_fields(method, currency, values)[0]

    def checked_fields(
        self, method: MethodSpec | str, currency: str, values: Mapping[str, str | bool]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """``validate_fields``'s messages, and the ``wire_fields`` of the fields that passed
        (all of ``wire_fields`` when there is no message): both from one pass."""
        spec = self._spec(method)
        errors: dict[str, str] = {}
        present: dict[str, str] = {}
        for field in self.fields_for(spec, currency):
            value = values.get(field.wire)
            if type(value) is str:  # most values: no call to make them text
                text, problem = value, None
            else:
                text, problem = _as_text(field, value)
            if problem is None and SEPARATOR in text:
                problem = SEPARATOR_MESSAGE  # it would forge other fields in the signature
            elif problem is None and text.strip():
                problem = CHECKS[field.check](text)
            elif problem is None and field.required:
                problem = f"{field.label} is required."
            if problem is not None:
                errors[field.wire] = problem
            elif text.strip():
                present[field.wire] = normalize(field.check, text)
        if (
            "asap_or_time" in spec.rules
            and not errors.keys() & {"asap", "time"}
            and present.get("asap") != _TRUE
            and not present.get("time")
        ):
            errors["time"] = "Choose “As soon as possible” or give a time."
        return errors, present

    def wire_fields(
        self, method: MethodSpec | str, currency: str, values: Mapping[str, str | bool]
    ) -> dict[str, str]:
        """The ``additional_fields`` to send: strings, booleans as ``"true"``/``"false"``,
        card spaces stripped, optional empty fields omitted. Validate first."""
        result: dict[str, str] = {}
        for field in self.fields_for(method, currency):
            text, problem = _as_text(field, values.get(field.wire))
            if problem is None and text.strip():
                result[field.wire] = normalize(field.check, text)
        return result


def _as_text(field: FieldSpec, value: str | bool | None) -> tuple[str, str | None]:
    """The value as text for its check, or a message when its type cannot fit the field."""
    if value is None:
        return "", None
    if isinstance(value, bool):
        if field.kind == "bool":
            return (_TRUE if value else _FALSE), None
        return "", "Enter text."
    if isinstance(value, str):
        return value, None
    return "", "Enter text."


@cache
def load_catalog() -> Catalog:
    """Return the catalog from ``resources/catalog.json``, validated once and cached."""
    try:
        data = load_json(CATALOG_FILE)
    except ValueError as exc:
        raise CatalogError(f"{CATALOG_FILE} is not valid JSON: {exc}") from exc
    return Catalog.from_data(data)
