"""The signing keys of the app's identity provider: a JSON Web Key Set fetched from
`JWT_JWKS_URL`, cached by issuer and `kid`, fetched again when a token names a key
the cache does not hold."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import aiohttp
import jwt

log = logging.getLogger(__name__)

ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})  # the app's tokens; HS256 stays with our own secret
REFETCH_INTERVAL = 30.0  # seconds: an unknown `kid` fetches the set again at most this often
FETCH_TIMEOUT = 5.0
MAX_SET_BYTES = 1_000_000


class KeySetUnavailable(Exception):
    """The key set could not be fetched or read."""


class KeySet:
    """The public keys at one JWKS URL, for tokens of one issuer (None: any issuer).

    Only signing keys usable with `ALGORITHMS` and carrying a `kid` are kept; the algorithm a
    key is used with is fixed by the key (its `alg`, else its type and curve), never
    by the token. A fetch that fails leaves the cached keys in place.
    """

    def __init__(self, url: str, issuer: str | None, *, refetch_interval: float = REFETCH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._issuer = issuer
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._refetched_at: float | None = None  # of the last refetch for an unknown `kid`
        self._fetching: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Fetch the set at start-up; a failure is logged, and the first unknown `kid` tries again."""
        await self._fetch()

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
        if self._session is not None:
            await self._session.close()

    async def key(self, issuer: str | None, kid: str) -> jwt.PyJWK | None:
        """The key `kid` of `issuer`; an unknown one fetches the set again, unless an
        earlier unknown `kid` did less than the refetch interval ago (then None at once)."""
        key = self._keys.get((issuer, kid))
        if key is not None or issuer != self._issuer:
            return key
        if self._fetching is not None or self._refetched_at is None \
                or self._clock() - self._refetched_at >= self._refetch_interval:
            await self._refetch()
        return self._keys.get((issuer, kid))

    async def _refetch(self) -> None:
        """One fetch at a time: callers arriving meanwhile wait for the one under way."""
        if self._fetching is None:
            self._refetched_at = self._clock()
            self._fetching = asyncio.create_task(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if fetching.done() and self._fetching is fetching:
                self._fetching = None

    async def _fetch(self) -> None:
        try:
            keys = await self._download()
        except (KeySetUnavailable, RecursionError) as error:  # nesting too deep for the JSON decoder
            log.warning("key set unavailable; cached keys still verify",
                        extra={"url": self._url, "error": str(error), "cached": len(self._keys)})
            return
        self._keys = {(self._issuer, kid): key for kid, key in keys.items()}
        log.info("key set fetched", extra={"url": self._url, "keys": len(keys)})

    async def _download(self) -> dict[str, jwt.PyJWK]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT))
        try:
            # no redirects: a key set is only believed from the URL the deployment named
            async with self._session.get(self._url, headers={"Accept": "application/json"},
                                         allow_redirects=False) as response:
                if response.status != 200:
                    raise KeySetUnavailable(f"answered {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65_536):
                    body += chunk
                    if len(body) > MAX_SET_BYTES:
                        raise KeySetUnavailable(f"larger than {MAX_SET_BYTES} bytes")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KeySetUnavailable(f"{type(error).__name__}: {error}") from None
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (ValueError, jwt.PyJWTError) as error:
            raise KeySetUnavailable(f"not a usable key set: {error}") from None
        return {key.key_id: key for key in keys
                if key.key_id and key.algorithm_name in ALGORITHMS and key.public_key_use in (None, "sig")}
