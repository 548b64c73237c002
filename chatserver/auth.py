"""User tokens: ours (HS256 with `SECRET_KEY`, issued to anonymous sessions or minted by the
app's backend) and the app's identity provider's (verified against its key set); claims
`sub`, `exp` and a display name, with the issuer and audience the deployment names."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from .errors import Unauthorized
from .keyset import ALGORITHMS as APP_ALGORITHMS
from .keyset import KeySet
from .models import NAME_MAX, TOKEN_MAX, USER_ID_MAX, Credentials, User, clean_name

ALGORITHM = "HS256"
CLOCK_SKEW = 30.0  # seconds an identity provider's clock may be off ours (`iat`, `exp`)


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

    def verify(self, token: object, *, expired_for: float = 0.0) -> Credentials:
        """The credentials one of our tokens (HS256 with our key) holds; raises
        `Unauthorized` unless it is well-formed and unexpired (or expired at most
        `expired_for` seconds ago), with the claims of `credentials`."""
        return credentials(_decode(token, self._key, [ALGORITHM], issuer=self._issuer, audience=self._audience,
                                   leeway=expired_for))

    def renewable(self, token: object) -> Credentials:
        """The credentials of a token to renew, so a returning user keeps their id (and
        with it their own messages): it must be ours; it may have expired, but not
        longer ago than one lifetime."""
        return self.verify(token, expired_for=self._lifetime)


class TokenVerifier:
    """Verifies every token a client may present: ours (HS256), and, with a key set, the
    app's identity provider's (RS256, ES256, EdDSA; `JWT_JWKS_URL`)."""

    def __init__(self, own: TokenIssuer, keys: KeySet | None, *, issuer: str | None = None,
                 audience: str | None = None) -> None:
        self._own = own
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: object) -> Credentials:
        """The credentials a valid token holds; raises `Unauthorized` for anything else.

        The token's `alg` picks the path, and each path allows only its algorithms:
        HS256 only with our secret, and the others only with the key of the token's
        `kid`, whose own algorithm must be the token's (`alg: none`, or HS256 signed
        with a public key, never verify)."""
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm == ALGORITHM:
            return self._own.verify(token)
        if self._keys is None or algorithm not in APP_ALGORITHMS:
            raise Unauthorized("invalid token: its algorithm is not accepted here")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("invalid token: it names no key (kid)")
        if self._issuer is not None and _unverified_claims(_token_text(token)).get("iss") != self._issuer:
            raise Unauthorized("token of another issuer or audience")
        key = await self._keys.key(self._issuer, kid)
        if key is None:
            raise Unauthorized("invalid token: signed by a key the identity provider does not list")
        return credentials(_decode(token, key, [key.algorithm_name], issuer=self._issuer, audience=self._audience,
                                   leeway=CLOCK_SKEW))


def credentials(claims: dict[str, Any]) -> Credentials:
    """The user, expiry and issue time that verified claims state: `sub` of 1 to 64
    characters; the display name `name`, else `preferred_username`, else `sub`, trimmed
    and cut to 32 characters, one with control or format characters refused."""
    sub = claims["sub"]
    if not isinstance(sub, str) or not 1 <= len(sub) <= USER_ID_MAX:
        raise Unauthorized("invalid token claims")
    issued_at = claims.get("iat")
    return Credentials(user=User(id=sub, name=_display_name(claims, sub)), expires_at=float(claims["exp"]),
                       issued_at=float(issued_at) if isinstance(issued_at, int | float) else None)


def _token_text(token: object) -> str:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX:
        raise Unauthorized("a token is required")
    return token


def _header(token: object) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(_token_text(token))
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims before the signature is checked: only to find the key, never to trust."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None
    return claims


def _decode(token: object, key: str | jwt.PyJWK, algorithms: list[str], *, issuer: str | None,
            audience: str | None, leeway: float = 0.0) -> dict[str, Any]:
    """The verified claims of `token`: signed by `key` with one of `algorithms`, unexpired
    (give or take `leeway` seconds), of `issuer` and for `audience` where those are set."""
    token = _token_text(token)
    required = ["sub", "exp", *(["iss"] if issuer else []), *(["aud"] if audience else [])]
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=algorithms, leeway=leeway, issuer=issuer,
                                            audience=audience, options={"require": required})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
        raise Unauthorized("token of another issuer or audience") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None
    return claims


def _display_name(claims: dict[str, object], sub: str) -> str:
    """`name`, else (when the token has none) `preferred_username`, else `sub`: trimmed and
    cut to the name limit. A name claim that is there must be a usable name: one that is
    empty, not a string, or holds control or format characters is refused, not replaced."""
    raw = next((claims[claim] for claim in ("name", "preferred_username") if claims.get(claim) is not None), sub)
    name = clean_name(raw.strip()[:NAME_MAX]) if isinstance(raw, str) else None
    if name is None:
        raise Unauthorized("invalid token claims: the name must be 1 to 32 characters, without control characters")
    return name
