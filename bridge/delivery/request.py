"""What the bot receives for one person's message: the vendor's "user sends message" body,
built once when the message is acknowledged and kept in the queue until delivered, so
every attempt (after a restart too) posts the same bytes with the same ``msg_id``."""

from __future__ import annotations

from bridge.vendor import airudder
from bridge.widget import ChoicesMessage, TextMessage, WidgetMessage


def default_envelope(call_id: str) -> airudder.Envelope:
    """For a session no callback has named yet: the person is known only by the call_id."""
    return airudder.Envelope(
        channel="web", channel_id="airudder-bridge", user=airudder.User(id=call_id)
    )


def upstream_request(
    message: TextMessage, choices: WidgetMessage | None, envelope: airudder.Envelope
) -> airudder.UpstreamRequest:
    """The vendor-shaped body for one person's message (a pick as WhatsApp's
    ``button_reply``/``list_reply``)."""
    content: airudder.UserText | airudder.UserInteractive
    if message.reply_to is None:
        content = airudder.UserText(text=message.text)
    else:
        option = (
            choices.option(message.reply_to.option_id)
            if isinstance(choices, ChoicesMessage)
            else None
        )
        pick = airudder.ReplyPick(
            id=message.reply_to.option_id,
            title=option.label if option else message.text,
            description=option.description if option else None,
        )
        if isinstance(choices, ChoicesMessage) and choices.style == "list":
            interactive = airudder.PickedInteractive(type="list_reply", list_reply=pick)
        else:
            interactive = airudder.PickedInteractive(type="button_reply", button_reply=pick)
        content = airudder.UserInteractive(interactive=interactive)
    return airudder.UpstreamRequest(
        call_id=message.call_id,
        channel=envelope.channel,
        channel_id=envelope.channel_id,
        user=envelope.user,
        messages=[airudder.UserMessage(msg_id=message.id, timestamp=message.ts, content=content)],
    )


def outgoing_body(
    message: TextMessage, choices: WidgetMessage | None, envelope: airudder.Envelope | None
) -> bytes:
    envelope = envelope or default_envelope(message.call_id)
    request = upstream_request(message, choices, envelope)
    return request.model_dump_json(exclude_none=True).encode()
