"""The registry of content kinds, and the unions derived from it.

Both unions come from the registered models, not from lists kept by hand: the vendor
content union is discriminated by ``content.type`` (and, for a content whose ``type`` names
a field that has a ``type`` of its own, like ``{"type": "interactive", "interactive":
{"type": "list"}}``, by that inner type too), the widget message union by ``kind``.
Models that embed a union (``airudder.Message``, the widget message adapter, …) are
rebuilt whenever the registry changes, so a kind registered at run time works like a
built-in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, GetCoreSchemaHandler, Tag, TypeAdapter
from pydantic import Field as PydanticField
from pydantic_core import CoreSchema

from bridge.kinds._base import Head, MessageBase, WidgetData
from bridge.vendor.base import TAG_MARK, Model
from bridge.vendor.base import field as get

Translate = Callable[[Any, Head], MessageBase | WidgetData]


@dataclass(frozen=True, eq=False)
class Kind:
    """One content kind: the vendor content models it reads, the widget messages it makes
    and the pure translation between them (given one of ``vendor``, it returns one of
    ``widget``, or that message as :data:`WidgetData`). A vendor model whose ``type`` is a
    plain ``str`` is the fallback for types no kind reads."""

    name: str
    vendor: tuple[type[Model], ...]
    widget: tuple[type[MessageBase], ...]
    translate: Translate


@dataclass
class _Route:
    """Where one ``content.type`` value leads: to ``tag``, or by the inner type."""

    tag: str | None = None
    inner: dict[str, str] = field(default_factory=dict)
    other: str | None = None  # an inner type no kind reads
    first: str | None = None  # an inner type that is no string: that kind's errors say so


@dataclass
class _Tables:
    vendor: Any  # the content union, ready for pydantic
    widget: Any  # the widget message union
    translators: dict[type[Model], Translate]


_ANY = "any string"  # a ``type: str`` field: a fallback


def _literals(model: type[BaseModel], name: str) -> tuple[str, ...] | str:
    info = model.model_fields.get(name)
    annotation = info.annotation if info is not None else None
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if annotation is str:
        return _ANY
    raise ValueError(f"{model.__name__}.{name} must be a Literal of strings or str: {annotation}")


def _models(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif get_origin(annotation) is Annotated:
        yield from _models(get_args(annotation)[0])
    else:
        for arg in get_args(annotation):
            yield from _models(arg)


def _inner(model: type[Model], outer: str) -> tuple[str, ...] | str | None:
    """The inner types ``model`` reads under ``content.type == outer``, or None if it is
    ``outer`` alone that decides."""
    info = model.model_fields.get(outer)
    inner = [m for m in _models(info.annotation if info else None) if "type" in m.model_fields]
    if not inner:
        return None
    values = [_literals(m, "type") for m in inner]
    return _ANY if _ANY in values else tuple(v for vs in values for v in vs)


def _derive(kinds: list[Kind]) -> _Tables:
    """The unions and the dispatch for ``kinds``; ValueError names the first conflict."""
    routes: dict[str, _Route] = {}
    fallback: str | None = None
    members: list[Any] = []
    translators: dict[type[Model], Translate] = {}
    claimed: set[str] = set()

    def claim(taken: object, what: str) -> None:
        if taken is not None:
            raise ValueError(f"two kinds claim {what}")

    for kind in kinds:
        claim(kind.name if kind.name in claimed else None, f"the name {kind.name!r}")
        claimed.add(kind.name)
        for model in kind.vendor:
            tag = f"{TAG_MARK}{kind.name}.{model.__name__}"
            claim(translators.get(model), f"the model {model.__name__}")
            translators[model] = kind.translate
            members.append(Annotated[model, Tag(tag)])
            outer = _literals(model, "type")
            if outer == _ANY:
                claim(fallback, "an unknown content.type")
                fallback = tag
                continue
            for value in outer:
                inner = _inner(model, value)
                route = routes.setdefault(value, _Route())
                if inner is None:
                    claim(route.tag or route.first or route.other, f"content.type {value!r}")
                    route.tag = tag
                    continue
                claim(route.tag, f"content.type {value!r}")
                if inner == _ANY:
                    claim(route.other, f"an unknown {value}.type")
                    route.other = tag
                    continue
                for name in inner:
                    claim(route.inner.get(name), f"{value}.type {name!r}")
                    route.inner[name] = tag
                route.first = route.first or tag
        for message in kind.widget:
            names = _literals(message, "kind")
            if names == _ANY:
                raise ValueError(f"{message.__name__}.kind must be a Literal")
            for name in names:
                what = f"the widget kind {name!r}"
                claim(what if what in claimed else None, what)
                claimed.add(what)

    def discriminate(value: Any) -> str | None:
        kind = get(value, "type")
        route = routes.get(kind) if isinstance(kind, str) else None
        if route is None:
            return fallback
        if route.tag is not None:
            return route.tag
        inner = get(get(value, kind), "type")
        if isinstance(inner, str):
            return route.inner.get(inner, route.other or fallback)
        return route.first or route.other

    widget: Any = Union[tuple(m for k in kinds for m in k.widget)]  # noqa: UP007 - at run time
    return _Tables(
        vendor=Annotated[Union[tuple(members)], Discriminator(discriminate)],  # noqa: UP007
        widget=Annotated[widget, PydanticField(discriminator="kind")],
        translators=translators,
    )


_kinds: list[Kind] = []
_tables = _Tables(vendor=None, widget=None, translators={})  # until the first kind
_dependents: list[type[BaseModel] | TypeAdapter[Any]] = []


def register(kind: Kind) -> Kind:
    """Add ``kind``: from now on its content types validate into its models and translate
    with it. ValueError if it claims a name, a type or a widget kind another kind has.
    At run time, call it on the thread that serves (the models are rebuilt in place)."""
    _change([*_kinds, kind])
    return kind


def unregister(kind: Kind) -> None:
    _change([k for k in _kinds if k is not kind])


def _change(kinds: list[Kind]) -> None:
    global _tables
    before = list(_kinds), _tables
    _tables = _derive(kinds)
    _kinds[:] = kinds
    try:
        _rebuild()
    except Exception:
        _kinds[:], _tables = before
        _rebuild()
        raise


def _rebuild() -> None:
    for dependent in _dependents:
        if isinstance(dependent, TypeAdapter):
            dependent.rebuild(force=True)
        else:
            dependent.model_rebuild(force=True)


def rebuild_on_change(*dependents: type[BaseModel] | TypeAdapter[Any]) -> None:
    """``dependents`` embed a union of the kinds (a field typed :data:`VendorContent` or
    :data:`WidgetUnion`, or a model holding one, listed after it): pydantic copies a
    schema into each model that uses it, so each is rebuilt, in this order, on a change."""
    _dependents.extend(dependents)


def translate(content: Model, head: Head) -> MessageBase | WidgetData:
    """``content`` as its kind's widget message."""
    return _tables.translators[type(content)](content, head)


def kinds() -> tuple[Kind, ...]:
    return tuple(_kinds)


class _Union:
    """Pydantic metadata: the schema of the union as the registry has it when a model is
    (re)built."""

    def __init__(self, side: Literal["vendor", "widget"]) -> None:
        self.side = side

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return handler.generate_schema(getattr(_tables, self.side))


VendorContent = Annotated[Model, _Union("vendor")]
WidgetUnion = Annotated[MessageBase, _Union("widget")]
