"""Secret settings accept `X: ${ENV}`, `X_file: path` and `X: {file: path}`; never both."""

from __future__ import annotations

from pathlib import Path

import pytest
from implmon.config import ConfigError, load_config, read_secret


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "implmon.yaml"
    path.write_text(text)
    return path


PROBE = """collectors:
  - kind: http_probe
    name: agents
    {secret}
    targets: [{{url: "http://127.0.0.1:1/health", component: a}}]
"""


def test_file_form_is_relative_to_the_config_and_reread(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    config = load_config(write(tmp_path, PROBE.format(secret="bearer_token_file: token")))
    secret = config.collectors[0].bearer_token
    assert secret.file == tmp_path / "token"
    assert read_secret(secret) == "s3cret"
    (tmp_path / "token").write_text("rotated")
    assert read_secret(secret) == "rotated"


def test_env_form(tmp_path: Path) -> None:
    path = write(tmp_path, PROBE.format(secret="bearer_token: ${PROBE_TOKEN}"))
    config = load_config(path, env={"PROBE_TOKEN": "from-env"})
    assert read_secret(config.collectors[0].bearer_token) == "from-env"


def test_alertmanager_token_file_form(tmp_path: Path) -> None:
    path = write(tmp_path, "alerting:\n  alertmanagers:\n    - url: http://127.0.0.1:9093\n"
                           "      bearer_token_file: /run/secrets/am\n")
    config = load_config(path)
    assert config.alerting.alertmanagers[0].bearer_token.file == Path("/run/secrets/am")


def test_both_forms_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, PROBE.format(
        secret="bearer_token: x\n    bearer_token_file: token"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [p.format() for p in err.value.problems] == [
        "collectors[0]: give either bearer_token or bearer_token_file, not both"]
