"""The rules of a change to a stored message, for stores that apply them in process.

`RedisStore` applies the same rules in its CHANGE script (`redis_scripts.py`); both
stores go through the same contract tests.
"""

from __future__ import annotations

from ..errors import Forbidden
from ..models import MessageDict, Role
from .base import Change

NOT_IN_HISTORY = "no message with that seq in this room's history"
MUTED = "you are muted in this room"
PRIVILEGED: tuple[Role, ...] = ("owner", "moderator")


def check_allowed(change: Change, message: MessageDict, role: Role | None, muted: bool) -> None:
    """`Forbidden` unless `change.actor` may make `change` to `message` (see `MessageStore.change`)."""
    if change.actor is None:
        if change.kind == "react":
            raise Forbidden("the backend does not react")
        return
    own = message["user"]["id"] == change.actor
    if change.kind == "edit" and not own:
        raise Forbidden("only its author may edit a message")
    if change.kind == "delete" and not own and role not in PRIVILEGED:
        raise Forbidden("only its author, an owner or a moderator may delete a message")
    if change.kind != "delete" and muted:
        raise Forbidden(MUTED)


def applied(message: MessageDict, change: Change, max_reactions: int) -> MessageDict | None:
    """`message` after `change` (its `rev` still the old one), or None when the change
    changes nothing; `Forbidden` for a change a message does not take."""
    if message["deleted"]:
        if change.kind == "delete":
            return None
        raise Forbidden("the message was deleted")
    if change.kind == "edit":
        return {**message, "text": change.text, "edited_at": change.ts}
    if change.kind == "delete":
        return {**message, "text": "", "deleted": True, "reactions": {}}
    return _reacted(message, change, max_reactions)


def _reacted(message: MessageDict, change: Change, max_reactions: int) -> MessageDict | None:
    assert change.actor is not None  # `check_allowed` refuses the backend's reactions
    reactions = message["reactions"]
    users = reactions.get(change.emoji, [])
    if change.on == (change.actor in users):
        return None
    if change.on and not users and len(reactions) >= max_reactions:
        raise Forbidden(f"a message holds at most {max_reactions} different emoji")
    changed = dict(reactions)
    if change.on:
        changed[change.emoji] = [*users, change.actor]
    else:
        rest = [user for user in users if user != change.actor]
        if rest:
            changed[change.emoji] = rest
        else:
            del changed[change.emoji]
    return {**message, "reactions": changed}
