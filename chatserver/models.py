"""Domain values and the payload models that validate client input at the edge."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import InvalidPayload, InvalidRoom, TooLarge

ROOM_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ROOM_RE = re.compile(ROOM_PATTERN)
NAME_MAX = 32
CLIENT_ID_MAX = 64
HISTORY_LIMIT_MAX = 100
HISTORY_LIMIT_DEFAULT = 50
INVITE_MAX = 128
TOKEN_MAX = 8192
USER_ID_MAX = 64  # a token's `sub`
REASON_MAX = 200
TITLE_MAX = 100
MEMBERS_PER_REQUEST = 1000
SANCTION_MAX_SECONDS = 10 * 365 * 86_400
QUOTE_LENGTH = 100  # characters of the answered message a reply quotes
EMOJI_MAX = 16
REACTIONS_MAX = 20  # different emoji on one message

# JSON without spaces; one encoder for every call (`json.dumps` with `separators` builds one each time)
compact_json = json.JSONEncoder(separators=(",", ":")).encode


class UserDict(TypedDict):
    id: str
    name: str


class QuoteDict(TypedDict):
    """What a reply quotes of the message it answers, as it was when the reply was sent."""

    seq: int
    user: UserDict
    text: str  # the first `QUOTE_LENGTH` characters


class MessageDict(TypedDict):
    id: str
    room: str
    seq: int
    rev: int  # the room's event counter at the message's creation or its latest change
    user: UserDict
    text: str
    ts: int
    client_id: str | None
    edited_at: int | None
    deleted: bool
    reactions: dict[str, list[str]]  # emoji -> ids of the users who gave it, in order
    reply_to: QuoteDict | None


@dataclass(frozen=True, slots=True)
class User:
    """Who is speaking: `id` from the token's `sub`, `name` as shown."""

    id: str
    name: str

    def as_dict(self) -> UserDict:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a room's stream: the `seq` of a message within an `epoch`, and the room's
    `rev` there when the client tracks changes (None for a version-1 client)."""

    seq: int
    epoch: str
    rev: int | None = None


SYSTEM_USER = User(id="system", name="System")  # who speaks and acts for the app's backend

Role = Literal["owner", "moderator", "member"]
ROLES: tuple[Role, ...] = get_args(Role)


class MemberDict(TypedDict):
    id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Member:
    """A user's entry in a room's roster: a member of a private room, or a role in a public one."""

    user: User
    role: Role

    def as_dict(self) -> MemberDict:
        return {"id": self.user.id, "name": self.user.name, "role": self.role}


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a verified token says: who, until when, and since when (Unix seconds)."""

    user: User
    expires_at: float
    issued_at: float | None


NAME_RULE = f"1 to {NAME_MAX} characters, without control characters"


def clean_name(raw: str, limit: int = NAME_MAX) -> str | None:
    """The display name (or a room's title, up to `limit`) as trimmed, or None when the contract refuses it."""
    name = raw.strip()
    if not 1 <= len(name) <= limit:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        return None
    return name


EMOJI_RULE = f"an emoji is 1 to {EMOJI_MAX} characters, without white space or control characters"


def is_emoji(raw: str) -> bool:
    """Whether `raw` is a reaction the contract accepts: 1 to `EMOJI_MAX` characters, no
    white space, and nothing invisible but what emoji are built with (the zero-width joiner
    and the tag characters of subdivision flags)."""
    if not 1 <= len(raw) <= EMOJI_MAX or not is_unicode(raw):
        return False
    return not any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp", "Zs")
                   or (unicodedata.category(ch) == "Cf" and not _builds_emoji(ch))
                   for ch in raw)


def _builds_emoji(ch: str) -> bool:
    return ch == "\u200d" or "\U000e0020" <= ch <= "\U000e007f"


def quote_of(message: MessageDict) -> QuoteDict:
    """What a reply to `message` quotes of it."""
    return {"seq": message["seq"], "user": message["user"], "text": message["text"][:QUOTE_LENGTH]}


def is_unicode(text: str) -> bool:
    """False when `text` holds lone surrogates ("\\ud800" in JSON): not Unicode, and
    clients in stricter languages fail on the whole payload that carries it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def message_text(raw: str, limit: int) -> str:
    """A message's text as stored (trimmed), or `invalid_payload` / `too_large` as the contract says."""
    text = raw.strip()
    if not text:
        raise InvalidPayload("text must not be empty")
    if not is_unicode(text):
        raise InvalidPayload("text must be valid Unicode (no lone surrogates)")
    if len(text) > limit:
        raise TooLarge(f"text is longer than {limit} characters")
    return text


def is_room_id(value: object) -> bool:
    """True when `value` is a room id of the contract's form."""
    return isinstance(value, str) and ROOM_RE.fullmatch(value) is not None


def check_room(room: str) -> None:
    """`invalid_room` unless `room` is a room id of the contract's form."""
    if not is_room_id(room):
        raise InvalidRoom("a room id is 1 to 64 of A-Z a-z 0-9 _ -")


# --- payloads of client events ------------------------------------------------
# Strict: "5" is not a number and true is not 1. Unknown fields are ignored so that
# newer clients keep working against this server.

RoomId = str  # validated separately so a bad room gets `invalid_room`, not `invalid_payload`
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=CLIENT_ID_MAX)]
SeqNumber = Annotated[int, Field(ge=0, le=2**53)]
BeforeSeq = Annotated[int, Field(ge=1, le=2**53)]
MessageSeq = Annotated[int, Field(ge=1, le=2**53)]
HistoryLimit = Annotated[int, Field(ge=1, le=HISTORY_LIMIT_MAX)]
InviteToken = Annotated[str, StringConstraints(min_length=1, max_length=INVITE_MAX)]


Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """Strict values, unknown fields ignored, immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Payload(StrictModel):
    room: RoomId


class SincePayload(StrictModel):
    seq: SeqNumber
    epoch: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    rev: SeqNumber | None = None


class JoinPayload(Payload):
    since: SincePayload | None = None
    invite: InviteToken | None = None


class LeavePayload(Payload):
    pass


class MessagePayload(Payload):
    text: str
    client_id: ClientId | None = None
    reply_to: MessageSeq | None = None


class EditPayload(Payload):
    seq: MessageSeq
    text: str


class DeletePayload(Payload):
    seq: MessageSeq


class ReactPayload(Payload):
    seq: MessageSeq
    emoji: str  # its rule (`clean_emoji`) answers in words of its own
    on: bool


class ReadPayload(Payload):
    seq: SeqNumber


class TypingPayload(Payload):
    typing: bool


class HistoryPayload(Payload):
    before_seq: BeforeSeq | None = None
    limit: HistoryLimit = HISTORY_LIMIT_DEFAULT


class MembersPayload(Payload):
    pass


UserId = Annotated[str, StringConstraints(min_length=1, max_length=USER_ID_MAX)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=REASON_MAX)]
Seconds = Annotated[int, Field(ge=1, le=SANCTION_MAX_SECONDS)]


class ModerationPayload(Payload):
    """`kick`, `unban` and `unmute`: the room and the user acted on."""

    user_id: UserId
    reason: Reason | None = None


class BanPayload(ModerationPayload):
    seconds: Seconds | None = None


class MutePayload(ModerationPayload):
    seconds: Seconds


class RefreshPayload(StrictModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=TOKEN_MAX)]


# --- payloads of HTTP requests ------------------------------------------------


class HistoryQuery(BaseModel):
    """Query string of the HTTP history route; numbers arrive as text, so parsing is lax."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    before_seq: BeforeSeq | None = None
    limit: HistoryLimit = HISTORY_LIMIT_DEFAULT


class CreateRoomRequest(StrictModel):
    private: bool
    capacity: Annotated[int, Field(ge=2, le=50)] = 2


class PublishUser(StrictModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: str


class PublishRequest(StrictModel):
    text: str
    user: PublishUser | None = None


class EditRequest(StrictModel):
    text: str


class MemberRequest(StrictModel):
    id: UserId
    name: str
    role: Role = "member"


class PutRoomRequest(StrictModel):
    private: Literal[True]
    title: Annotated[str, StringConstraints(min_length=1, max_length=TITLE_MAX)] | None = None
    members: Annotated[list[MemberRequest], Field(max_length=MEMBERS_PER_REQUEST)] = []


class PutMemberRequest(StrictModel):
    name: str | None = None
    role: Role | None = None


class SanctionRequest(StrictModel):
    seconds: Seconds | None = None
    reason: Reason | None = None


class DisconnectUserRequest(StrictModel):
    revoke: bool = False


class NotifyRequest(StrictModel):
    data: dict[str, Any]


def parse(model: type[Model], raw: object) -> Model:
    """`raw` validated as `model`, or `InvalidPayload` naming the first bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise InvalidPayload(describe_errors(error.errors(include_input=False))) from None


def describe_errors(errors: list[Any]) -> str:
    """One readable line out of pydantic's error list, naming the first bad field."""
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "payload"
    return f"{where}: {first.get('msg', 'invalid')}"
