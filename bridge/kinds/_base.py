"""What every widget message shares: the head fields, and the wire config."""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

Sender = Literal["bot", "user", "system"]


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class MessageBase(Wire):
    """A widget message. A kind's message adds ``kind: Literal[...]`` and its own fields."""

    v: Literal[1] = 1
    call_id: str
    seq: int = Field(ge=0, description="per-call_id counter from 1, no gaps (0 = not stored yet)")
    id: str = Field(description="stable id: the same vendor message always gets the same id")
    sender: Sender = Field(alias="from")
    ts: int = Field(description="Unix seconds")
    # Declared here so code holding any widget message can read it; every kind narrows it
    # to a Literal, which is where the union's discriminator comes from. Its place (after
    # ts) is the place in every message's JSON.
    kind: str


class Head(TypedDict):
    """The head fields of the message a translator makes (``Message(**head, ...)``)."""

    call_id: str
    seq: int
    id: str
    sender: Sender
    ts: int
