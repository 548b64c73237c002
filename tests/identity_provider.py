"""An identity provider of the tests' own: real RSA, P-256 and Ed25519 keys, and a JSON Web
Key Set served over HTTP on a loopback port, as Auth0 or Keycloak serve theirs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER, AUDIENCE = "https://id.example", "chat"


@dataclass
class SigningKey:
    """One private key of the provider, the algorithm it signs with, and its `kid`."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def new(cls, kid: str, algorithm: str) -> SigningKey:
        private = {"RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                   "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
                   "EdDSA": ed25519.Ed25519PrivateKey.generate}[algorithm]()
        return cls(kid, algorithm, private)

    def jwk(self) -> dict[str, Any]:
        """The public half, as a JWK with this key's `kid`."""
        to_jwk = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.algorithm].to_jwk
        return {**to_jwk(self.private.public_key(), as_dict=True), "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, sub: str = "idp-user-1", *, kid: str | None = None, algorithm: str | None = None,
              lifetime: float = 600, **claims: Any) -> str:
        """A token of this provider for `sub`, signed with this key; `kid=""` names no key."""
        now = int(time.time())
        payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + int(lifetime), **claims}
        kid = self.kid if kid is None else kid
        return jwt.encode(payload, self.private, algorithm=algorithm or self.algorithm,
                          headers={"kid": kid} if kid else None)


def unsigned_token(kid: str, **claims: Any) -> str:
    """A token with `alg: none`, as an attacker sends it."""
    now = int(time.time())
    return jwt.encode({"sub": "intruder", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, **claims}, None,
                      algorithm="none", headers={"kid": kid})


def hmac_token(secret: bytes, kid: str, **claims: Any) -> str:
    """An HS256 token whose HMAC key is `secret` (say, a provider's public key in PEM), built
    by hand: PyJWT itself refuses to use a PEM key as an HMAC secret."""
    now = int(time.time())
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + part(
        {"sub": "intruder", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, **claims})
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@dataclass
class KeySetServer:
    """Serves `keys` as a JWKS at `url`; `available = False` answers 503. `fetches` counts requests."""

    keys: list[SigningKey]
    available: bool = True
    fetches: int = 0
    body: bytes | None = None  # served instead of the key set, when set
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def start(self) -> KeySetServer:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                provider.fetches += 1
                if not provider.available:
                    self.send_error(503)
                    return
                body = provider.body or json.dumps({"keys": [key.jwk() for key in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # in two writes a moment apart, as a body arrives over TLS or from a proxy
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                time.sleep(0.05)
                self.wfile.write(body[len(body) // 2:])

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
