"""User tokens: JWTs signed with HS256, claims `sub`, `exp` and a display name; with the
issuer and audience the deployment names, when it names them."""

from __future__ import annotations

import secrets
import time

import jwt

from .errors import Unauthorized
from .models import NAME_MAX, User, clean_name

ALGORITHM = "HS256"
SUB_MAX = 64


class TokenIssuer:
    """Issues and verifies the tokens that identify users."""

    def __init__(self, secret_key: str, lifetime: float, *, issuer: str | None = None,
                 audience: str | None = None) -> None:
        self._key = secret_key
        self._lifetime = lifetime
        self._issuer = issuer
        self._audience = audience

    def issue(self, name: str) -> tuple[str, User]:
        """A new user with a fresh id, and the token that proves it."""
        user = User(id=secrets.token_urlsafe(12), name=name)
        return self.token_for(user), user

    def token_for(self, user: User) -> str:
        """A token for `user`, valid for the lifetime from now."""
        now = time.time()
        claims: dict[str, object] = {"sub": user.id, "name": user.name, "iat": int(now),
                                     "exp": int(now + self._lifetime)}
        if self._issuer is not None:
            claims["iss"] = self._issuer
        if self._audience is not None:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: object, *, expired_for: float = 0.0) -> User:
        """The user a token names; raises `Unauthorized` unless it is well-formed,
        signed with our key using HS256, unexpired (or expired at most `expired_for`
        seconds ago), of the configured issuer and audience, with a `sub` of 1 to 64
        characters. The display name is `name`, else `preferred_username`, else `sub`,
        trimmed and cut to 32 characters; one with control or format characters is refused."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Unauthorized("a token is required")
        required = ["sub", "exp", *(["iss"] if self._issuer else []), *(["aud"] if self._audience else [])]
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], leeway=expired_for,
                                issuer=self._issuer, audience=self._audience, options={"require": required})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise Unauthorized("token of another issuer or audience") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        sub = claims["sub"]
        if not isinstance(sub, str) or not 1 <= len(sub) <= SUB_MAX:
            raise Unauthorized("invalid token claims")
        return User(id=sub, name=_display_name(claims, sub))

    def renew(self, token: object) -> tuple[str, User]:
        """A new token for the user an old one names, so a returning user keeps their id
        (and with it their own messages). The old token must be ours; it may have expired,
        but not longer ago than one lifetime."""
        user = self.verify(token, expired_for=self._lifetime)
        return self.token_for(user), user


def _display_name(claims: dict[str, object], sub: str) -> str:
    """`name`, else (when the token has none) `preferred_username`, else `sub`: trimmed and
    cut to the name limit. A name claim that is there must be a usable name: one that is
    empty, not a string, or holds control or format characters is refused, not replaced."""
    raw = next((claims[claim] for claim in ("name", "preferred_username") if claims.get(claim) is not None), sub)
    name = clean_name(raw.strip()[:NAME_MAX]) if isinstance(raw, str) else None
    if name is None:
        raise Unauthorized("invalid token claims: the name must be 1 to 32 characters, without control characters")
    return name
