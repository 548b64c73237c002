"""User tokens: JWTs signed with HS256, claims `sub`, `name`, `exp`."""

from __future__ import annotations

import secrets
import time

import jwt

from .errors import Unauthorized
from .models import User, clean_name

ALGORITHM = "HS256"


class TokenIssuer:
    """Issues and verifies the tokens that identify users."""

    def __init__(self, secret_key: str, lifetime: float) -> None:
        self._key = secret_key
        self._lifetime = lifetime

    def issue(self, name: str) -> tuple[str, User]:
        """A new user with a fresh id, and the token that proves it."""
        user = User(id=secrets.token_urlsafe(12), name=name)
        return self.token_for(user), user

    def token_for(self, user: User) -> str:
        """A token for `user`, valid for the lifetime from now."""
        claims = {"sub": user.id, "name": user.name, "exp": int(time.time() + self._lifetime)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: object, *, expired_for: float = 0.0) -> User:
        """The user a token names; raises `Unauthorized` unless it is well-formed,
        signed with our key using HS256, unexpired (or expired at most `expired_for`
        seconds ago), and carries a valid `sub` and `name`."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Unauthorized("a token is required")
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], leeway=expired_for,
                                options={"require": ["sub", "name", "exp"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        sub, raw_name = claims["sub"], claims["name"]
        name = clean_name(raw_name) if isinstance(raw_name, str) else None
        if not isinstance(sub, str) or not 1 <= len(sub) <= 64 or name is None:
            raise Unauthorized("invalid token claims")
        return User(id=sub, name=name)

    def renew(self, token: object) -> tuple[str, User]:
        """A new token for the user an old one names, so a returning user keeps their id
        (and with it their own messages). The old token must be ours; it may have expired,
        but not longer ago than one lifetime."""
        user = self.verify(token, expired_for=self._lifetime)
        return self.token_for(user), user
