"""Secrets and paths in config files: never literal credentials in the file.

A credential setting ``X`` (typed :class:`Secret`) accepts, as Prometheus does:

.. code-block:: yaml

    bearer_token: ${ALERTMANAGER_TOKEN}            # from the environment
    bearer_token_file: /run/secrets/am-token       # or read from a file at each use
    bearer_token: {file: /run/secrets/am-token}    # the same, spelled out

>>> from pydantic import BaseModel
>>> class Target(BaseModel):
...     bearer_token: Secret | None = None
...     _forms = model_validator(mode="before")(secret_file_forms)
>>> Target.model_validate({"bearer_token_file": "/tmp/t"}).bearer_token.file
PosixPath('/tmp/t')
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

__all__ = ["ConfigPath", "Secret", "StrictModel", "read_secret", "secret_file_forms"]


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        return (Path(base) / value).resolve()
    return value


#: A filesystem path; relative ones are resolved against the config file's directory.
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]


class Secret(BaseModel):
    """A credential from the environment (``${NAME}``) or a file. Read it with
    :func:`read_secret` when it is used, so a rotated file is picked up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str | None = Field(default=None, repr=False)
    file: ConfigPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.value is None) == (self.file is None):
            raise ValueError("give exactly one of value (e.g. ${TOKEN}) or file")
        return self


def read_secret(secret: Secret | None) -> str | None:
    """The secret's current value, stripped; None when no secret is configured."""
    if secret is None:
        return None
    if secret.value is not None:
        return secret.value
    assert secret.file is not None
    return secret.file.read_text(encoding="utf-8").strip()


def _is_secret(annotation: Any) -> bool:
    if annotation is Secret:
        return True
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and Secret in typing.get_args(annotation)


def secret_file_forms(cls: type[BaseModel], data: Any) -> Any:
    """A ``mode="before"`` model validator: ``X: "string"`` and ``X_file: path`` become the
    :class:`Secret` field ``X``. Giving both is an error."""
    if not isinstance(data, dict):
        return data
    fields = [n for n, f in cls.model_fields.items() if _is_secret(f.annotation)]
    if not fields:
        return data
    data = dict(data)
    for name in fields:
        file_key = f"{name}_file"
        if file_key in data:
            if name in data:
                raise ValueError(f"give either {name} or {file_key}, not both")
            data[name] = {"file": data.pop(file_key)}
        elif isinstance(data.get(name), str):
            data[name] = {"value": data[name]}
    return data


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen, and each
    :class:`Secret` setting ``X`` also accepts ``X: ${ENV}`` and ``X_file: path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _secret_forms(cls, data: Any) -> Any:
        return secret_file_forms(cls, data)
