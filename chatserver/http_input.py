"""What the HTTP views read from a request: JSON bodies, bearer credentials, path ids."""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from .errors import InvalidPayload, NotFound, Unauthorized
from .keys import sessions_key, settings_key, verifier_key
from .models import USER_ID_MAX, Model, User, parse


async def json_object(request: web.Request) -> dict[str, object]:
    """The body, which must be one JSON object (`invalid_payload` otherwise)."""
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidPayload("the body must be a JSON object") from None
    if not isinstance(raw, dict):
        raise InvalidPayload("the body must be a JSON object")
    return raw


async def read_body(request: web.Request, model: type[Model]) -> Model:
    """The body validated as `model`; an empty body reads as `{}`."""
    return parse(model, await json_object(request) if request.body_exists else {})


def bearer(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


async def signed_in_user(request: web.Request) -> User:
    """The user whose token the request bears (`unauthorized` for none, a bad or a revoked one)."""
    credentials = await request.app[verifier_key].verify(bearer(request))
    await request.app[sessions_key].refuse_revoked(credentials)
    return credentials.user


def require_api_key(request: web.Request, what: str) -> None:
    """`unauthorized` without the deployment's API key; `not_found` while it has none."""
    api_key = request.app[settings_key].api_key
    if api_key is None:
        raise NotFound(f"{what} is disabled: API_KEY is not set")
    given = bearer(request) or ""
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise Unauthorized("a valid API key is required")


def user_id_param(request: web.Request) -> str:
    """The `{user_id}` of the path: a token's `sub`, 1 to 64 characters."""
    user_id = request.match_info["user_id"]
    if not 1 <= len(user_id) <= USER_ID_MAX:
        raise InvalidPayload(f"a user id is 1 to {USER_ID_MAX} characters")
    return user_id
