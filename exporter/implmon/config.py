"""The configuration file: strict typed models, errors that name the path and line.

One YAML file declares global settings and the pipeline components in lists under
``collectors``, ``processors``, ``analyzers`` and ``reporters``; each entry has ``kind`` (a
registered component kind, see :mod:`implmon.registry`) and ``name`` plus that kind's own
settings, validated by the kind's ``Settings`` model. Unknown keys are errors.

- ``${NAME}`` anywhere in a string is replaced by the environment variable (``$$`` is a ``$``);
  an unset variable is an error.
- A relative path is relative to the directory of the config file.
- Secrets come from files (``*_file`` settings) or ``${NAME}``, never literally in the file.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "c.yaml").write_text("interval: 5s\\ncollectors:\\n  - kind: nope\\n    name: x\\n")
>>> try:
...     load_config(d / "c.yaml")
... except ConfigError as err:
...     print(err.problems[0].path, err.problems[0].line)
collectors[0].kind 3
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
)

from implmon.component import ComponentSettings, Role
from implmon.credentials import ConfigPath, Secret, StrictModel, read_secret
from implmon.durations import Duration
from implmon.registry import ComponentRegistry, UnknownKindError

__all__ = [
    "AlertingConfig",
    "AlertmanagerConfig",
    "Config",
    "ConfigError",
    "ConfigPath",
    "HttpURL",
    "IngestConfig",
    "Problem",
    "Secret",
    "load_config",
    "load_model",
    "parse_listen_address",
    "read_secret",
]

ROLE_SECTIONS: dict[str, Role] = {
    "collectors": Role.COLLECTOR,
    "processors": Role.PROCESSOR,
    "analyzers": Role.ANALYZER,
    "reporters": Role.REPORTER,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file: where (dotted path, line) and what."""

    path: str
    message: str
    line: int | None = None

    def format(self, source: str = "") -> str:
        where = (
            f"{source}:{self.line}: " if source and self.line else (f"{source}: " if source else "")
        )
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(Exception):
    """A config file could not be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.format(source) for p in self.problems))


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464``, ``:9464`` for all interfaces) as (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ":port" means all interfaces, as in Go
    return host, int(port_text)


def _check_listen(value: str) -> str:
    parse_listen_address(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_check_listen)]

_HTTP_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


def _check_http_url(value: str) -> str:
    if not _HTTP_URL.fullmatch(value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


#: An absolute http(s) URL (the error says so, rather than quoting a regular expression).
HttpURL = Annotated[str, AfterValidator(_check_http_url)]


class AlertmanagerConfig(StrictModel):
    """One Alertmanager the alert stage sends findings to (list several for an HA pair)."""

    url: HttpURL
    timeout: Duration = 10.0
    bearer_token: Secret | None = None


class AlertingConfig(StrictModel):
    """The alert stage: where findings go and how they are resent."""

    alertmanagers: list[AlertmanagerConfig] = []
    resend_delay: Duration = 60.0
    queue_capacity: int = Field(default=10000, gt=0)
    # generatorURL of sent alerts; defaults to the exporter's own URL.
    external_url: HttpURL | None = None
    # Added to every alert the exporter sends (as Prometheus's external_labels, e.g.
    # environment), so its alerts group and inhibit like Prometheus's; a finding's own label
    # of the same name wins.
    external_labels: dict[Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")], str] = {}


class IngestConfig(StrictModel):
    """The event ingest API (``POST /api/v1/events``)."""

    token: Secret | None = None
    max_body_bytes: int = Field(default=1 << 20, gt=0)


class Config(StrictModel):
    """The whole file, after validation (component entries are each kind's own Settings)."""

    interval: Duration = 15.0
    listen_address: ListenAddress | None = None
    external_url: HttpURL | None = None
    # The default is resolved like a written value: next to the file, not in the process's cwd.
    store_path: ConfigPath = Field(default=Path("implmon.db"), validate_default=True)
    retention: Duration = 90 * 86400.0
    # SQLite synchronous for the event store: normal survives a crash, full also power loss.
    store_synchronous: Literal["normal", "full"] = "normal"
    alerting: AlertingConfig = AlertingConfig()
    ingest: IngestConfig = IngestConfig()
    collectors: list[Any] = []
    processors: list[Any] = []
    analyzers: list[Any] = []
    reporters: list[Any] = []

    # Where the file was read from; relative paths inside were resolved against its directory.
    source: Path | None = None

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def components(self) -> Iterator[ComponentSettings]:
        for section in ROLE_SECTIONS:
            yield from getattr(self, section)


# --- loading ------------------------------------------------------------------------------

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _line_index(node: yaml.Node, path: tuple[str | int, ...], out: dict[Any, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def _duplicate_keys(node: yaml.Node, path: tuple[str | int, ...], problems: list[Problem]) -> None:
    """A key given twice in one mapping (YAML loaders silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                problems.append(
                    Problem(
                        _dotted((*path, key.value)),
                        f"duplicate key (first at line {first[key.value]})",
                        line,
                    )
                )
            else:
                first[key.value] = line
            _duplicate_keys(value, (*path, key.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, (*path, i), problems)


def _expand_env(
    data: Any,
    path: tuple[str | int, ...],
    env: Mapping[str, str],
    lines: Mapping[Any, int],
    problems: list[Problem],
) -> Any:
    if isinstance(data, str):

        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in env:
                problems.append(
                    Problem(
                        _dotted(path),
                        f"environment variable {name} is not set",
                        _nearest_line(path, lines),
                    )
                )
                return ""
            return env[name]

        return _ENV.sub(sub, data)
    if isinstance(data, dict):
        return {k: _expand_env(v, (*path, k), env, lines, problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_env(v, (*path, i), env, lines, problems) for i, v in enumerate(data)]
    return data


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(
    err: ValidationError, prefix: tuple[str | int, ...], lines: Mapping[Any, int]
) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        # pydantic puts union/function tags in loc (e.g. "function-after[...]"); drop them.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        path = (*prefix, *loc)
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(Problem(_dotted(path), message, _nearest_line(path, lines)))
    return problems


def _nearest_line(path: tuple[Any, ...], lines: Mapping[Any, int]) -> int | None:
    for cut in range(len(path), -1, -1):
        line = lines.get(path[:cut])
        if line is not None:
            return line
    return None


def load_config(
    path: str | Path,
    registry: ComponentRegistry | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read, expand and validate a config file; raise :class:`ConfigError` listing every problem."""
    source = Path(path)
    return parse_config(_read(source), source, registry, env)


def _read(source: Path) -> str:
    """The file's text, or a ConfigError (unreadable, or not UTF-8: where, not a traceback)."""
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(str(source), [Problem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problem = Problem("", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} is invalid here", line)
        raise ConfigError(str(source), [problem]) from None


def parse_config(
    text: str,
    source: Path,
    registry: ComponentRegistry | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate config text as if read from ``source`` (which anchors relative paths)."""
    name = str(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, [Problem("", f"invalid YAML: {problem}", line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(name, [Problem("", "must be a mapping of settings", 1)])
    lines: dict[Any, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _line_index(node, (), lines)
        _duplicate_keys(node, (), problems)
    data = _expand_env(data, (), os.environ if env is None else env, lines, problems)

    registry = registry or ComponentRegistry.default()
    base_dir = source.resolve().parent
    context = {"base_dir": base_dir}
    entries: dict[str, list[Any]] = {}
    # Names are unique across all sections: the monitor, /-/ready and the component metrics
    # key components by name alone.
    seen: dict[str, str] = {}
    for section, role in ROLE_SECTIONS.items():
        raw = data.get(section)
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Problem(section, "must be a list of components", lines.get((section,))))
            continue
        entries[section] = []
        for i, item in enumerate(raw):
            where: tuple[str | int, ...] = (section, i)
            settings = _validate_entry(item, role, where, registry, context, lines, problems)
            if settings is None:
                continue
            if settings.name in seen:
                problems.append(
                    Problem(
                        _dotted((*where, "name")),
                        f"duplicate name {settings.name!r} (also {seen[settings.name]})",
                        _nearest_line((*where, "name"), lines),
                    )
                )
                continue
            seen[settings.name] = _dotted(where)
            entries[section].append(settings)

    top = {k: v for k, v in data.items() if k not in ROLE_SECTIONS}
    try:
        config = Config.model_validate(
            {**top, **entries, "source": source.resolve()}, context=context
        )
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, (), lines))
        config = None
    if problems or config is None:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(name, problems)
    return config


def _validate_entry(
    item: Any,
    role: Role,
    where: tuple[str | int, ...],
    registry: ComponentRegistry,
    context: dict[str, Any],
    lines: Mapping[Any, int],
    problems: list[Problem],
) -> ComponentSettings | None:
    if not isinstance(item, dict):
        problems.append(
            Problem(
                _dotted(where), "must be a mapping with kind and name", _nearest_line(where, lines)
            )
        )
        return None
    kind = item.get("kind")
    if not isinstance(kind, str):
        problems.append(
            Problem(
                _dotted((*where, "kind")),
                "required: a registered component kind",
                _nearest_line(where, lines),
            )
        )
        return None
    try:
        cls = registry.get(kind, role)
    except UnknownKindError as exc:
        problems.append(
            Problem(_dotted((*where, "kind")), str(exc), _nearest_line((*where, "kind"), lines))
        )
        return None
    try:
        return cls.Settings.model_validate(item, context=context)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, where, lines))
        return None


M = TypeVar("M", bound=BaseModel)


def load_model(path: str | Path, model: type[M]) -> M:
    """Validate a small YAML file (e.g. the web config) against ``model``, with the same
    path-and-line errors as the main config; relative paths are relative to the file."""
    source = Path(path)
    text = _read(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            str(source),
            [
                Problem(
                    "",
                    f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                    mark.line + 1 if mark is not None else None,
                )
            ],
        ) from None
    lines: dict[Any, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _line_index(node, (), lines)
        _duplicate_keys(node, (), problems)
    data = _expand_env(data, (), os.environ, lines, problems)
    try:
        result = model.model_validate(data, context={"base_dir": source.resolve().parent})
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, (), lines))
    if problems:
        raise ConfigError(str(source), problems)
    return result
