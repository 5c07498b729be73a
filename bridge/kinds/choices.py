"""Kind ``choices``: the vendor's ``interactive`` list and button messages, one widget
kind for both so the widget has one component (``style`` tells them apart)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from bridge.kinds import Head, Kind, MessageBase, WidgetData, Wire, register
from bridge.vendor.base import TAG_MARK, Id, Model
from bridge.vendor.base import field as get

# -- vendor: WhatsApp-shaped interactive messages -----------------------------------------


class ListRow(Model):
    id: Id
    title: str
    description: str | None = None


class ListSection(Model):
    title: str | None = None
    rows: list[ListRow] = Field(min_length=1)


class ListAction(Model):
    button: str | None = None
    sections: list[ListSection] = Field(min_length=1)


class Reply(Model):
    id: Id
    title: str


class ReplyButton(Model):
    type: Literal["reply"] = "reply"
    reply: Reply


class ButtonAction(Model):
    buttons: list[ReplyButton] = Field(min_length=1)


class Body(Model):
    text: str


class ListInteractive(Model):
    type: Literal["list"]
    body: Body
    action: ListAction


class ButtonInteractive(Model):
    type: Literal["button"]
    body: Body
    action: ButtonAction


Interactive = Annotated[
    Annotated[ListInteractive, Tag(f"{TAG_MARK}list")]
    | Annotated[ButtonInteractive, Tag(f"{TAG_MARK}button")],
    Discriminator(lambda v: f"{TAG_MARK}{get(v, 'type')}"),
]


class InteractiveContent(Model):
    type: Literal["interactive"]
    interactive: Interactive


# -- widget -------------------------------------------------------------------------------


class Option(Wire):
    id: str
    label: str
    description: str | None = None


class Section(Wire):
    title: str | None = None
    options: list[Option]


class ChoicesMessage(MessageBase):
    kind: Literal["choices"] = "choices"
    text: str
    style: Literal["list", "buttons"]
    button: str | None = Field(None, description="style list: label of the button opening it")
    sections: list[Section]

    def option(self, option_id: str) -> Option | None:
        for section in self.sections:
            for option in section.options:
                if option.id == option_id:
                    return option
        return None


def translate(content: InteractiveContent, head: Head) -> WidgetData:
    """A :class:`ChoicesMessage` as data (None fields left out, in field order)."""
    interactive = content.interactive
    data: WidgetData = {**head, "kind": "choices", "text": interactive.body.text}
    if isinstance(interactive, ListInteractive):
        data["style"] = "list"
        if interactive.action.button is not None:
            data["button"] = interactive.action.button
        data["sections"] = [_section(s.title, s.rows) for s in interactive.action.sections]
    else:
        data["style"] = "buttons"
        options = [{"id": b.reply.id, "label": b.reply.title} for b in interactive.action.buttons]
        data["sections"] = [{"options": options}]
    return data


def _section(title: str | None, rows: list[ListRow]) -> dict[str, Any]:
    options = [
        {"id": r.id, "label": r.title}
        if r.description is None
        else {"id": r.id, "label": r.title, "description": r.description}
        for r in rows
    ]
    return {"options": options} if title is None else {"title": title, "options": options}


KIND = register(
    Kind("choices", vendor=(InteractiveContent,), widget=(ChoicesMessage,), translate=translate)
)
