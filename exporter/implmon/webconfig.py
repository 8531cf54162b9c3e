"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

.. code-block:: yaml

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional mTLS
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2y$10$...   # bcrypt hash, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`

Passwords are never stored, only their bcrypt hashes; a successful check is cached (keyed by a
SHA-256 of the credentials) so that bcrypt's deliberate slowness is paid once, as the
exporter-toolkit does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import AfterValidator, model_validator

from implmon.credentials import ConfigPath, StrictModel

__all__ = ["WebConfig", "basic_auth_middleware", "headers_middleware", "ssl_context"]

_CLIENT_AUTH = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")


def _is_file(path: Path) -> Path:
    # Checked when the file is read, so that a typo is a config error naming the setting, not
    # a failure to listen when the server starts.
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _is_bcrypt_hash(value: str) -> str:
    if not _BCRYPT_HASH.fullmatch(value):
        raise ValueError("must be a bcrypt hash (e.g. from htpasswd -nBC 10), not a password")
    return value


ExistingFile = Annotated[ConfigPath, AfterValidator(_is_file)]


class TLSServerConfig(StrictModel):
    cert_file: ExistingFile
    key_file: ExistingFile
    client_auth_type: _CLIENT_AUTH = "NoClientCert"
    client_ca_file: ExistingFile | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"
    cipher_suites: list[str] = []
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = []

    @model_validator(mode="after")
    def _ca_for_client_auth(self) -> TLSServerConfig:
        # Python's ssl verifies every client certificate it requires, so RequireAnyClientCert
        # needs the CA too (without it no client could connect).
        verifying = self.client_auth_type in (
            "RequireAnyClientCert",
            "VerifyClientCertIfGiven",
            "RequireAndVerifyClientCert",
        )
        if verifying and self.client_ca_file is None:
            raise ValueError(f"client_ca_file is required with {self.client_auth_type}")
        try:
            _build_context(self)
        except OSError as exc:  # ssl.SSLError included
            raise ValueError(f"cannot load the certificate, key or CA: {exc}") from None
        return self


class HTTPServerConfig(StrictModel):
    headers: dict[str, str] = {}
    http2: bool = True


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = HTTPServerConfig()
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_is_bcrypt_hash)]] = {}


def ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    tls = config.tls_server_config
    return None if tls is None else _build_context(tls)


def _build_context(tls: TLSServerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    ctx.maximum_version = _VERSIONS[tls.max_version]
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.cipher_suites:
        ctx.set_ciphers(":".join(tls.cipher_suites))
    if tls.client_ca_file is not None:
        ctx.load_verify_locations(tls.client_ca_file)
    ctx.verify_mode = {
        "NoClientCert": ssl.CERT_NONE,
        # Python verifies any certificate it requests; with no CA to verify against, asking
        # would only make clients that do send one fail the handshake.
        "RequestClientCert": ssl.CERT_NONE if tls.client_ca_file is None else ssl.CERT_OPTIONAL,
        "RequireAnyClientCert": ssl.CERT_REQUIRED,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }[tls.client_auth_type]
    return ctx


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_auth_middleware(
    users: dict[str, str], own_auth: Callable[[web.Request], bool] | None = None
) -> Middleware:
    """401 unless the request carries valid basic-auth credentials, except for requests for
    which ``own_auth`` returns True: endpoints that check their own credentials (the ingest
    API's bearer token, which CI systems send)."""
    verified: set[bytes] = set()

    def check(header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = users.get(user)
        if not sep or hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if key in verified:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False
        if ok:
            verified.add(key)
        return ok

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if own_auth is not None and own_auth(request):
            return await handler(request)
        if not check(request.headers.get("Authorization", "")):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="implmon"'},
            )
        return await handler(request)

    return middleware


def headers_middleware(headers: dict[str, str]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # 404s and 405s are raised, not returned; they get the headers too.
            exc.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    return middleware
