"""``--web.config.file`` (exporter-toolkit format) against a real ``implmon run``: basic auth
with bcrypt hashes, TLS with certificates made here by the ``openssl`` CLI, client
certificates, extra headers; and invalid files, whose errors name the setting."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from implmon.config import ConfigError, load_model
from implmon.stack import Process, free_port, implmon_argv
from implmon.webconfig import WebConfig, ssl_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

HEADERS = {"X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=31536000"}


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
        "-subj", f"/CN=implmon test {name}", cwd=d,
    )  # fmt: skip


def _leaf(d: Path, name: str, ca: str, usage: str, san: str = "") -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d,
    )  # fmt: skip
    ext = d / f"{name}.ext"
    ext.write_text(
        f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage={usage}\n"
        + (f"subjectAltName={san}\n" if san else "")
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-set_serial", str(abs(hash(name)) % 10**9), "-days", "2", "-out", f"{name}.crt",
        "-extfile", ext.name, cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _leaf(d, "server", "ca", "serverAuth", "IP:127.0.0.1,DNS:localhost")
    _leaf(d, "client", "ca", "clientAuth")
    _leaf(d, "rogue-client", "rogue-ca", "clientAuth")
    return Pki(
        d, d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
        d / "rogue-client.crt", d / "rogue-client.key",
    )  # fmt: skip


# --- a real exporter ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def get(
    url: str,
    *,
    context: ssl.SSLContext | None = None,
    user: str | None = None,
    password: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    headers = dict(headers or {})
    if user is not None:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers), err.read())


def client_context(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


EXPORTER_CONFIG = """\
interval: 1s
store_path: implmon.db
collectors:
  - kind: system
    name: host
"""


@dataclass
class Exporter:
    proc: Process
    base: str


StartExporter = Callable[..., Exporter]


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[StartExporter]:
    """Start ``implmon run --web.config.file`` and wait until it answers with ``probe``."""
    procs: list[Process] = []

    def start(web_config: str, scheme: str = "http", probe: Callable[[str], Response] | None = None,
              web_dir: Path | None = None) -> Exporter:  # fmt: skip
        web_dir = web_dir or tmp_path
        web_file = web_dir / "web.yml"
        web_file.write_text(web_config)
        (tmp_path / "implmon.yaml").write_text(EXPORTER_CONFIG)
        port = free_port()
        argv = implmon_argv(
            "run", "--config", str(tmp_path / "implmon.yaml"),
            "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web_file),
        )  # fmt: skip
        # Run from another directory: relative paths must follow the files, not the cwd.
        proc = Process("exporter", argv, tmp_path / f"exporter-{port}.log", cwd=Path("/"))
        procs.append(proc)
        base = f"{scheme}://127.0.0.1:{port}"
        check = probe or (lambda url: get(url))
        _wait(lambda: check(f"{base}/-/healthy"), proc)
        return Exporter(proc, base)

    yield start
    for proc in procs:
        proc.stop()


def _wait(call: Callable[[], Response], proc: Process, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"exporter exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            call()
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"exporter did not answer within {timeout}s: {last}\n{proc.tail()}")


# --- basic auth ----------------------------------------------------------------------------------


def _hash(password: str, prefix: str = "$2b$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return prefix + hashed[4:]


def test_basic_auth(start_exporter: StartExporter) -> None:
    headers = "\n".join(f"    {k}: {v}" for k, v in HEADERS.items())
    web = (
        "basic_auth_users:\n"
        f"  prometheus: {_hash('correct horse')}\n"
        # htpasswd -B writes $2y$ hashes: they work too.
        f"  grafana: '{_hash('battery staple', '$2y$')}'\n"
        f"http_server_config:\n  headers:\n{headers}\n"
    )
    exporter = start_exporter(web)
    url = f"{exporter.base}/metrics"

    denied = [
        get(url),
        get(url, user="prometheus", password="wrong"),
        get(url, user="prometheus", password=""),
        get(url, user="nobody", password="correct horse"),
        get(url, user="grafana", password="correct horse"),
        get(url, headers={"Authorization": "Basic not-base64!"}),
        get(url, headers={"Authorization": "Bearer correct horse"}),
    ]
    for response in denied:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="implmon"'
        assert b"implmon_" not in response.body
        for name, value in HEADERS.items():
            assert response.headers[name] == value

    for user, password in (("prometheus", "correct horse"), ("grafana", "battery staple")):
        # Twice: the second check is served from the verified-credentials cache.
        for _ in range(2):
            ok = get(url, user=user, password=password)
            assert ok.status == 200
            assert b"implmon_build_info" in ok.body
            for name, value in HEADERS.items():
                assert ok.headers[name] == value
    # Every route is behind the password, and raised errors (404) carry the headers too.
    assert get(f"{exporter.base}/-/ready").status == 401
    missing = get(f"{exporter.base}/nope", user="prometheus", password="correct horse")
    assert missing.status == 404
    assert missing.headers["X-Frame-Options"] == "deny"


def _post_event(url: str, token: str, event_id: str) -> Response:
    body = json.dumps({"kind": "build", "id": event_id, "build_type": "testing",
                       "outcome": "success", "duration_seconds": 1.5}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers), err.read())


def test_basic_auth_lets_ci_post_events_with_the_ingest_token(
    start_exporter: StartExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Basic auth guards the exporter, but CI systems authenticate to the ingest API with its
    bearer token: that one route is checked by ingest itself, and only when a token is set."""
    monkeypatch.setenv("IMPLMON_INGEST_TOKEN", "ci-token")
    exporter = start_exporter(f"basic_auth_users:\n  prometheus: {_hash('pw')}\n")
    events = f"{exporter.base}/api/v1/events"
    assert _post_event(events, "ci-token", "b-1").status == 201
    assert _post_event(events, "wrong", "b-2").status == 403  # ingest's answer, not basic auth's
    # The bearer token opens nothing else.
    assert get(f"{exporter.base}/metrics", headers={"Authorization": "Bearer ci-token"}).status \
        == 401


def test_without_an_ingest_token_basic_auth_guards_events_too(
    start_exporter: StartExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMPLMON_INGEST_TOKEN", raising=False)
    exporter = start_exporter(f"basic_auth_users:\n  prometheus: {_hash('pw')}\n")
    assert _post_event(f"{exporter.base}/api/v1/events", "anything", "b-3").status == 401


# --- TLS ---------------------------------------------------------------------------------------


def test_tls(start_exporter: StartExporter, pki: Pki, tmp_path: Path) -> None:
    # Relative cert paths are relative to the web config file.
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    shutil.copy(pki.server_cert, web_dir / "server.crt")
    shutil.copy(pki.server_key, web_dir / "server.key")
    trusted = client_context(pki.ca)
    exporter = start_exporter(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  min_version: TLS13\n",
        scheme="https",
        probe=lambda url: get(url, context=trusted),
        web_dir=web_dir,
    )
    ok = get(f"{exporter.base}/metrics", context=trusted)
    assert ok.status == 200
    assert b"implmon_build_info" in ok.body

    # A client that does not trust the CA refuses the server.
    with pytest.raises(urllib.error.URLError) as info:
        get(f"{exporter.base}/metrics", context=client_context(None))
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    # TLS 1.2 is below min_version.
    old = client_context(pki.ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(OSError):
        get(f"{exporter.base}/metrics", context=old)
    # Plain HTTP to the TLS port gets no metrics.
    with pytest.raises(OSError):
        get(exporter.base.replace("https://", "http://") + "/metrics")


def test_client_certificate_required(start_exporter: StartExporter, pki: Pki) -> None:
    good = client_context(pki.ca, pki.client_cert, pki.client_key)
    exporter = start_exporter(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n",
        scheme="https",
        probe=lambda url: get(url, context=good),
    )
    url = f"{exporter.base}/metrics"
    assert get(url, context=good).status == 200
    no_cert = client_context(pki.ca)
    rogue = client_context(pki.ca, pki.rogue_client_cert, pki.rogue_client_key)
    for ctx in (no_cert, rogue):
        with pytest.raises(OSError):
            get(url, context=ctx)
    # Still serving the right client after refusing the others.
    assert get(url, context=good).status == 200


def test_client_certificate_requested_without_a_ca(start_exporter: StartExporter, pki: Pki) -> None:
    # Python verifies every certificate it asks for: without a CA to verify against, a client
    # that sends one must still get in (RequestClientCert never rejects).
    trusted = client_context(pki.ca)
    exporter = start_exporter(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  client_auth_type: RequestClientCert\n",
        scheme="https",
        probe=lambda url: get(url, context=trusted),
    )
    url = f"{exporter.base}/metrics"
    assert get(url, context=trusted).status == 200
    with_cert = client_context(pki.ca, pki.rogue_client_cert, pki.rogue_client_key)
    assert get(url, context=with_cert).status == 200


def test_tls_and_basic_auth_together(start_exporter: StartExporter, pki: Pki) -> None:
    trusted = client_context(pki.ca)
    exporter = start_exporter(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"basic_auth_users:\n  prometheus: {_hash('pw')}\n",
        scheme="https",
        probe=lambda url: get(url, context=trusted),
    )
    assert get(f"{exporter.base}/metrics", context=trusted).status == 401
    response = get(f"{exporter.base}/metrics", context=trusted, user="prometheus", password="pw")
    assert response.status == 200


# --- invalid files -----------------------------------------------------------------------------


def _invalid(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_model(path, WebConfig)
    return path, str(info.value).splitlines()


def test_missing_cert_file_setting(tmp_path: Path, pki: Pki) -> None:
    path, lines = _invalid(tmp_path, f"tls_server_config:\n  key_file: {pki.server_key}\n")
    assert lines == [f"{path}:1: tls_server_config.cert_file: Field required"]


def test_cert_file_that_does_not_exist(tmp_path: Path, pki: Pki) -> None:
    path, lines = _invalid(
        tmp_path, f"tls_server_config:\n  cert_file: nope.crt\n  key_file: {pki.server_key}\n"
    )
    assert lines == [
        f"{path}:2: tls_server_config.cert_file: no such file: {tmp_path / 'nope.crt'}"
    ]


def test_key_that_does_not_match_the_cert(tmp_path: Path, pki: Pki) -> None:
    path, lines = _invalid(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.client_key}\n",
    )
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{path}:1: tls_server_config: cannot load the certificate, key or CA: "
    )
    assert "KEY_VALUES_MISMATCH" in lines[0]


@pytest.mark.parametrize(
    "mode", ["RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
)
def test_verifying_client_auth_needs_a_ca(tmp_path: Path, pki: Pki, mode: str) -> None:
    path, lines = _invalid(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: {mode}\n",
    )
    assert lines == [f"{path}:1: tls_server_config: client_ca_file is required with {mode}"]


def test_unknown_keys_and_values(tmp_path: Path, pki: Pki) -> None:
    path, lines = _invalid(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        "  min_version: TLS14\n"
        "basic_auth:\n  prometheus: x\n",
    )
    assert lines == [
        f"{path}:4: tls_server_config.min_version: "
        "Input should be 'TLS10', 'TLS11', 'TLS12' or 'TLS13'",
        f"{path}:5: basic_auth: unknown key",
    ]


def test_plain_password_instead_of_a_hash(tmp_path: Path) -> None:
    path, lines = _invalid(tmp_path, "basic_auth_users:\n  prometheus: hunter2\n")
    assert lines == [
        f"{path}:2: basic_auth_users.prometheus: "
        "must be a bcrypt hash (e.g. from htpasswd -nBC 10), not a password"
    ]


def test_valid_file_builds_the_context(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {pki.ca}\n"
        "  min_version: TLS13\n"
    )
    ctx = ssl_context(load_model(path, WebConfig))
    assert ctx is not None
    assert ctx.verify_mode is ssl.CERT_OPTIONAL
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3
    assert ssl_context(WebConfig()) is None


def test_run_refuses_an_invalid_web_config(tmp_path: Path) -> None:
    (tmp_path / "implmon.yaml").write_text(EXPORTER_CONFIG)
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    result = subprocess.run(
        implmon_argv(
            "run", "--config", str(tmp_path / "implmon.yaml"),
            "--web.listen-address", f"127.0.0.1:{free_port()}", "--web.config.file", str(web),
        ),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "implmon run: invalid configuration, not starting:",
        f"{web}:2: tls_server_config.cert_file: no such file: {tmp_path / 'missing.crt'}",
        f"{web}:3: tls_server_config.key_file: no such file: {tmp_path / 'missing.key'}",
    ]
