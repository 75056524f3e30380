"""The Connect Card form, generated from a service's config JSON schema: the HTML fields to render and the
config read back from a submitted form. Both walk the same field tree, so names always agree.

Field names are dotted paths into the config (`base_url`, `tables.0.path`). A discriminated union at
`auth` is a select named `auth.type` plus one fieldset per variant, whose fields are named
`auth~bearer.token`: every variant is in the page (CSS shows the chosen one, no script needed) and only
the chosen one is read back. Secret fields are password inputs, never prefilled; left blank they read
back as the mask, which `sluice.config_secrets` turns into "keep the stored value".

Fields marked `ADVANCED` in a config model are rendered only for a card created with
`connect_card_config.all_fields: true`; fields Sluice sets itself (`set_by_sluice`) are shown read-only.
A field the form did not render is never read from it: it keeps its stored value (or, in a new list
item, its default).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from html import escape
from typing import Any

from sluice.config_secrets import MASK
from sluice.errors import InvalidInput
from sluice.sources.base import Service

Form = Mapping[str, list[str]]

_NO_DEFAULT: Any = object()
_MAX_LIST_ITEMS = 200
_MAX_MAP_LINES = 200
_ACRONYMS = {"Url": "URL", "Api": "API", "Arn": "ARN", "Id": "ID"}
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class FieldNode:
    """One field of the config schema, as the form sees it."""

    kind: (
        str  # group | union | objects | strings | map | bool | int | number | enum | const | secret | string
    )
    title: str
    nullable: bool = False
    default: Any = _NO_DEFAULT
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, FieldNode] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    discriminator: str = "type"
    variants: dict[str, FieldNode] = field(default_factory=dict)
    item: FieldNode | None = None
    options: tuple[str, ...] = ()
    advanced: bool = False  # rendered only when the card asks for all fields
    set_by_sluice: bool = False  # shown read-only, never read back

    def blank(self) -> Any:
        """What an empty input means: the default, else null where allowed, else an empty value."""
        if self.default is not _NO_DEFAULT:
            return copy.deepcopy(self.default)
        if self.nullable:
            return None
        return {"strings": [], "map": {}}.get(self.kind, "")


# ---- schema → field tree ---------------------------------------------------------------------------


def _deref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target = defs[str(schema["$ref"]).rsplit("/", 1)[-1]]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _title(name: str, schema: dict[str, Any]) -> str:
    words = str(schema.get("title") or name.replace("_", " ").title()).split()
    return " ".join(_ACRONYMS.get(w, w) for w in words)


def _build(schema: dict[str, Any], defs: dict[str, Any], name: str) -> FieldNode:
    schema = _deref(schema, defs)
    nullable = False
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**_deref(options[0], defs), **rest} if len(options) == 1 else {**rest, "type": "string"}
    node = FieldNode(
        kind="string",
        title=_title(name, schema),
        nullable=nullable,
        default=schema.get("default", _NO_DEFAULT),
        description=str(schema.get("description") or ""),
        schema=schema,
        advanced=schema.get("advanced") is True,
        set_by_sluice=bool(schema.get("set_by_sluice")),
    )
    kind = schema.get("type")
    if "oneOf" in schema and "discriminator" in schema:
        node.kind = "union"
        node.discriminator = schema["discriminator"]["propertyName"]
        for option in schema["oneOf"]:
            sub = _deref(option, defs)
            tag = sub["properties"][node.discriminator]
            value = str(tag["const"] if "const" in tag else tag["enum"][0])
            node.variants[value] = _build(sub, defs, value)
    elif kind == "object" and "properties" in schema:
        node.kind = "group"
        node.properties = {k: _build(v, defs, k) for k, v in schema["properties"].items()}
        node.required = frozenset(schema.get("required", ()))
    elif kind == "object":
        node.kind = "map"
    elif kind == "array":
        items = _deref(schema.get("items") or {}, defs)
        if items.get("type") == "object" or "properties" in items or "oneOf" in items:
            node.kind = "objects"
            node.item = _build(items, defs, name)
        else:
            node.kind = "strings"
    elif kind == "boolean":
        node.kind = "bool"
    elif kind in ("integer", "number"):
        node.kind = "int" if kind == "integer" else "number"
    elif "const" in schema:
        node.kind = "const"
    elif "enum" in schema:
        node.kind = "enum"
        node.options = tuple(str(v) for v in schema["enum"])
    elif schema.get("secret") or schema.get("format") == "password":
        node.kind = "secret"
    return node


@cache
def _tree(service_name: str) -> FieldNode:
    from sluice.sources import get_service

    schema = get_service(service_name).config_model.model_json_schema(by_alias=True)
    return _build(schema, schema.get("$defs", {}), service_name)


def form_tree(service: Service) -> FieldNode:
    return _tree(service.name)


# ---- rendering -------------------------------------------------------------------------------------


@dataclass
class _Render:
    all_fields: bool
    variants: set[str] = field(default_factory=set)


def _editable(node: FieldNode, all_fields: bool) -> bool:
    """Whether the form renders an input for the field (and so reads it back)."""
    return not node.set_by_sluice and (all_fields or not node.advanced)


def _name(path: list[str]) -> str:
    return ".".join(path)


def _id(path: list[str]) -> str:
    return "f-" + _name(path)


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _row(path: list[str], node: FieldNode, control: str, hint: str = "", required: bool = False) -> str:
    star = ' <span class="req" aria-hidden="true">*</span>' if required else ""
    hints = "".join(f'<p class="hint">{escape(h)}</p>' for h in (node.description, hint) if h)
    return (
        f'<div class="field"><label for="{_attr(_id(path))}">{escape(node.title)}{star}</label>'
        f"{control}{hints}</div>"
    )


def _read_only(path: list[str], node: FieldNode, value: Any, hint: str) -> str:
    """A value shown but not submitted (no name): naming keys and fields Sluice sets."""
    shown = "" if value is None else value
    return (
        f'<div class="field"><label for="{_attr(_id(path))}">{escape(node.title)}</label>'
        f'<input type="text" id="{_attr(_id(path))}" value="{_attr(shown)}" readonly>'
        f'<p class="hint">{escape(hint)}</p></div>'
    )


def _shown(node: FieldNode, value: Any) -> Any:
    if value is None and node.default is not _NO_DEFAULT:
        return node.default
    return value


def _render(node: FieldNode, path: list[str], value: Any, stored: Any, required: bool, ctx: _Render) -> str:
    name, ident = _attr(_name(path)), _attr(_id(path))
    value = _shown(node, value)
    if node.kind == "group":
        inner = _render_group(node, path, value, stored, ctx)
        return f'<fieldset class="group"><legend>{escape(node.title)}</legend>{inner}</fieldset>'
    if node.kind == "union":
        return _render_union(node, path, value, stored, ctx)
    if node.kind == "objects":
        return _render_objects(node, path, value, stored, ctx)
    if node.kind == "const":
        return ""
    if node.kind == "bool":
        checked = " checked" if value is True else ""
        return (
            f'<div class="field check"><label><input type="checkbox" id="{ident}" name="{name}" '
            f'value="true"{checked}> {escape(node.title)}</label></div>'
        )
    if node.kind == "enum":
        options = "".join(
            f'<option value="{_attr(o)}"{" selected" if o == value else ""}>{escape(o)}</option>'
            for o in node.options
        )
        return _row(path, node, f'<select id="{ident}" name="{name}">{options}</select>', required=required)
    if node.kind == "secret":
        kept = stored == MASK
        hint = "A value is stored. Leave blank to keep the stored value." if kept else ""
        placeholder = ' placeholder="(stored)"' if kept else ""
        control = (
            f'<input type="password" id="{ident}" name="{name}" value="" autocomplete="new-password" '
            f'spellcheck="false"{placeholder}>'
        )
        return _row(path, node, control, hint, required and not kept)
    if node.kind in ("int", "number"):
        limits = "".join(
            f' {attr}="{_attr(node.schema[key])}"'
            for key, attr in (("minimum", "min"), ("maximum", "max"))
            if key in node.schema
        )
        step = "1" if node.kind == "int" else "any"
        shown = "" if value is None else value
        control = (
            f'<input type="number" id="{ident}" name="{name}" value="{_attr(shown)}" step="{step}"{limits}>'
        )
        return _row(path, node, control, required=required)
    if node.kind == "strings":
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else ""
        control = f'<input type="text" id="{ident}" name="{name}" value="{_attr(text)}" spellcheck="false">'
        return _row(path, node, control, "Separate several values with commas.", required)
    if node.kind == "map":
        lines = "\n".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else ""
        control = (
            f'<textarea id="{ident}" name="{name}" rows="{max(2, min(8, len(lines.splitlines()) + 1))}" '
            f'spellcheck="false">{escape(lines)}</textarea>'
        )
        return _row(path, node, control, "One per line, as name: value.", required)
    shown = "" if value is None else value
    control = f'<input type="text" id="{ident}" name="{name}" value="{_attr(shown)}" spellcheck="false">'
    return _row(path, node, control, required=required)


def _render_group(node: FieldNode, path: list[str], value: Any, stored: Any, ctx: _Render) -> str:
    values = value if isinstance(value, dict) else {}
    stored_values = stored if isinstance(stored, dict) else {}
    return "".join(
        _render_child(key, child, path, values.get(key), stored_values.get(key), key in node.required, ctx)
        for key, child in node.properties.items()
    )


def _render_child(
    key: str, child: FieldNode, path: list[str], value: Any, stored: Any, required: bool, ctx: _Render
) -> str:
    if child.set_by_sluice:
        return _read_only([*path, key], child, stored, child.description or "Set by Sluice.")
    if not _editable(child, ctx.all_fields):
        return ""
    return _render(child, [*path, key], value, stored, required, ctx)


def _variant_of(node: FieldNode, value: Any) -> str | None:
    chosen = value.get(node.discriminator) if isinstance(value, dict) else None
    return str(chosen) if chosen is not None and str(chosen) in node.variants else None


def _render_union(node: FieldNode, path: list[str], value: Any, stored: Any, ctx: _Render) -> str:
    chosen = _variant_of(node, value) or _variant_of(node, node.default) or next(iter(node.variants))
    stored_variant = _variant_of(node, stored)
    switch_path = [*path, node.discriminator]
    options = "".join(
        f'<option value="{_attr(v)}"{" selected" if v == chosen else ""}>{escape(v)}</option>'
        for v in node.variants
    )
    parts = [
        '<div class="union">',
        f'<div class="field"><label for="{_attr(_id(switch_path))}">{escape(node.title)}</label>'
        f'<select class="switch" id="{_attr(_id(switch_path))}" name="{_attr(_name(switch_path))}">'
        f"{options}</select></div>",
    ]
    for variant, sub in node.variants.items():
        inner = _render_group(
            sub,
            [*path[:-1], f"{path[-1]}~{variant}"],
            value if variant == chosen else None,
            stored if variant == stored_variant else None,
            ctx,
        )
        if not inner:
            continue
        if _VARIANT_NAME.match(variant):
            ctx.variants.add(variant)
        parts.append(f'<fieldset class="variant" data-variant="{_attr(variant)}">{inner}</fieldset>')
    parts.append("</div>")
    return "".join(parts)


def _singular(title: str) -> str:
    return title[:-1] if title.endswith("s") and len(title) > 1 else title


def _render_objects(node: FieldNode, path: list[str], value: Any, stored: Any, ctx: _Render) -> str:
    assert node.item is not None
    items = value if isinstance(value, list) else []
    stored_items = stored if isinstance(stored, list) else []
    noun = _singular(node.title)
    parts = [f'<fieldset class="list"><legend>{escape(node.title)}</legend>']
    for index, item in enumerate(items[:_MAX_LIST_ITEMS]):
        item_path = [*path, str(index)]
        label = item.get("name") if isinstance(item, dict) else None
        caption = f"{noun} {index + 1}" + (f": {label}" if label else "")
        inner = _render_group(
            node.item, item_path, item, stored_items[index] if index < len(stored_items) else None, ctx
        )
        parts.append(
            f'<fieldset class="item"><legend>{escape(caption)}</legend>'
            f'<input type="hidden" name="{_attr(_name([*item_path, "_item"]))}" value="1">{inner}'
            f'<div class="field check remove"><label><input type="checkbox" '
            f'name="{_attr(_name([*item_path, "_remove"]))}" value="1"> Remove this {escape(noun.lower())}'
            f"</label></div></fieldset>"
        )
    new_path = [*path, str(len(items))]
    inner = _render_group(node.item, new_path, None, None, ctx)
    open_attr = "" if items else " open"
    parts.append(
        f'<details class="add"{open_attr}><summary>Add a {escape(noun.lower())}</summary>'
        f'<fieldset class="item new"><input type="hidden" name="{_attr(_name([*new_path, "_item"]))}" '
        f'value="new">{inner}</fieldset></details></fieldset>'
    )
    return "".join(parts)


@dataclass(frozen=True)
class RenderedFields:
    html: str
    css: str  # rules that show the chosen variant of each union


def render_fields(
    tree: FieldNode,
    values: Mapping[str, Any],
    stored: Mapping[str, Any],
    naming_keys: tuple[str, ...],
    all_fields: bool = False,
) -> RenderedFields:
    """The form's fields for a config: `values` prefill them (secrets never), `stored` is the stored
    (masked) config that tells which secrets have a value to keep. Advanced fields only with
    `all_fields`."""
    ctx = _Render(all_fields=all_fields)
    parts = []
    for key, child in tree.properties.items():
        if key in naming_keys:
            hint = f"Names the destination {key}; it cannot be changed."
            parts.append(_read_only([key], child, stored.get(key, ""), hint))
            continue
        parts.append(
            _render_child(key, child, [], values.get(key), stored.get(key), key in tree.required, ctx)
        )
    css = "".join(
        f'.union:has(> .field > select.switch > option[value="{v}"]:checked) > '
        f'.variant[data-variant="{v}"]{{display:block}}'
        for v in sorted(ctx.variants)
    )
    return RenderedFields("".join(parts), css)


# ---- reading a submitted form ----------------------------------------------------------------------


def _value(form: Form, path: list[str]) -> str | None:
    values = form.get(_name(path))
    return values[-1] if values else None


def _read_group(
    node: FieldNode, path: list[str], form: Form, stored: Any, all_fields: bool
) -> dict[str, Any]:
    stored_values = stored if isinstance(stored, dict) else {}
    values: dict[str, Any] = {}
    for key, child in node.properties.items():
        if _editable(child, all_fields):
            values[key] = _read(child, [*path, key], form, stored_values.get(key), all_fields)
        elif key in stored_values:  # not in the form: the stored value stays
            values[key] = copy.deepcopy(stored_values[key])
    return values


def _read(node: FieldNode, path: list[str], form: Form, stored: Any, all_fields: bool) -> Any:
    if node.kind == "group":
        return _read_group(node, path, form, stored, all_fields)
    if node.kind == "union":
        chosen = _value(form, [*path, node.discriminator])
        if chosen not in node.variants:
            chosen = _variant_of(node, stored) or _variant_of(node, node.default) or next(iter(node.variants))
        stored_variant = stored if _variant_of(node, stored) == chosen else None
        value = _read(
            node.variants[chosen], [*path[:-1], f"{path[-1]}~{chosen}"], form, stored_variant, all_fields
        )
        value[node.discriminator] = chosen
        return value
    if node.kind == "objects":
        return _read_objects(node, path, form, stored, all_fields)
    if node.kind == "const":
        return node.schema["const"]
    if node.kind == "bool":
        return _value(form, path) is not None
    raw = _value(form, path)
    text = "" if raw is None else raw
    if node.kind == "secret":
        # Blank keeps the stored value; config_secrets refuses it when nothing is stored.
        return text if text else MASK
    if node.kind == "strings":
        values = [v.strip() for v in text.split(",") if v.strip()]
        return values if values or node.default is _NO_DEFAULT else node.blank()
    if node.kind == "map":
        return _read_map(node, path, text)
    if not text.strip():
        return node.blank()
    return text.strip() if node.kind in ("int", "number") else text


def _read_map(node: FieldNode, path: list[str], text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines()[:_MAX_MAP_LINES], start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise InvalidInput(f"{node.title}: line {number} must be written as name: value")
        result[key.strip()] = value.strip()
    return result


def _item_indexes(form: Form, path: list[str]) -> list[tuple[int, str]]:
    prefix = _name(path) + "."
    found: dict[int, str] = {}
    for key, values in form.items():
        if key.startswith(prefix) and key.endswith("._item"):
            middle = key[len(prefix) : -len("._item")]
            if middle.isdigit() and len(middle) < 6:
                found[int(middle)] = values[-1] if values else ""
    return sorted(found.items())[:_MAX_LIST_ITEMS]


def _is_blank(node: FieldNode, path: list[str], form: Form) -> bool:
    """A new list item nobody filled in: every required text field (or every text field) is empty."""
    texty = {
        k: c for k, c in node.properties.items() if c.kind in ("string", "strings", "map", "int", "number")
    }
    keys = [k for k in texty if k in node.required] or list(texty)
    return all(not (_value(form, [*path, k]) or "").strip() for k in keys)


def _read_objects(node: FieldNode, path: list[str], form: Form, stored: Any, all_fields: bool) -> list[Any]:
    assert node.item is not None
    stored_items = stored if isinstance(stored, list) else []
    items = []
    for index, marker in _item_indexes(form, path):
        item_path = [*path, str(index)]
        if _value(form, [*item_path, "_remove"]) is not None:
            continue
        if marker == "new" and node.item.kind == "group" and _is_blank(node.item, item_path, form):
            continue
        before = stored_items[index] if marker != "new" and index < len(stored_items) else None
        items.append(_read(node.item, item_path, form, before, all_fields))
    return items


def read_form(
    tree: FieldNode,
    form: Form,
    stored: Mapping[str, Any],
    naming_keys: tuple[str, ...],
    all_fields: bool = False,
) -> dict[str, Any]:
    """The whole config a submitted form describes (naming keys, and the fields the form did not
    render, from the stored config). Secrets left blank read as the mask."""
    config = _read_group(
        tree, [], form, {k: v for k, v in stored.items() if k not in naming_keys}, all_fields
    )
    config.update({key: stored.get(key) for key in naming_keys if key in tree.properties})
    return config
