"""Runbooks as files: Markdown with YAML front matter, parsed and validated with clear errors.

A runbook file looks like this::

    ---
    id: restart-service
    title: Restart a service
    services: [payments-api]
    alert_names: [HighErrorRate]
    tags: [restart]
    risk: high              # low | medium | high
    auto_safe: false        # may run without a human when a suggestion is >= 0.95 sure
    approvers: [platform]   # team names, Slack user ids (U...) or user groups (S...)
    allowed_users: []       # same kinds; empty: anyone
    allowed_channels: []    # Slack channel ids; empty: any channel
    parameters:
      service: {type: choice, allowed: [payments-api], required: true}
    steps:
      - {name: Restart, kind: shell, run: [kubectl, rollout, restart, "deployment/{service}"]}
    ---
    Free Markdown for people.

Steps are ``manual`` (text), ``shell`` (an argv list, never a shell string) or ``http`` (a request);
``{name}`` placeholders may only name declared parameters. Parsing is pure: it checks shape and
references; the allow-lists of commands and hosts are checked where the runbook runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from knowledge.yamlfile import safe_load

__all__ = [
    "RunbookFormatError", "ParamSpec", "StepSpec", "RunbookSpec", "parse_runbook", "to_markdown",
    "spec_from_row_fields", "RISKS", "PARAM_TYPES", "STEP_KINDS",
]

RISKS = ("low", "medium", "high")
PARAM_TYPES = ("string", "choice", "int", "path")
STEP_KINDS = ("manual", "shell", "http")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_PARAM_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TOP_KEYS = {"id", "title", "services", "alert_names", "tags", "risk", "auto_safe", "approvers",
             "allowed_users", "allowed_channels", "parameters", "steps"}


class RunbookFormatError(ValueError):
    """A runbook file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its type and what values it accepts."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = True
    default: str | None = None
    allowed: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    roots: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "required": self.required}
        for key, val in (("description", self.description), ("default", self.default),
                         ("allowed", list(self.allowed)), ("pattern", self.pattern), ("min", self.minimum),
                         ("max", self.maximum), ("roots", list(self.roots))):
            if val not in (None, "", []):
                d[key] = val
        return d


@dataclass(frozen=True)
class StepSpec:
    """One step: ``manual`` text, a ``shell`` argv list or an ``http`` request."""

    name: str
    kind: str
    text: str = ""
    run: tuple[str, ...] = ()
    method: str = "GET"
    url: str = ""
    timeout_s: float = 60.0

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "manual":
            d["text"] = self.text
        elif self.kind == "shell":
            d["run"] = list(self.run)
            d["timeout_s"] = self.timeout_s
        else:
            d.update(method=self.method, url=self.url, timeout_s=self.timeout_s)
        return d


@dataclass(frozen=True)
class RunbookSpec:
    """A validated runbook, independent of where it is stored."""

    slug: str
    title: str
    steps: tuple[StepSpec, ...]
    services: tuple[str, ...] = ()
    alert_names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    parameters: tuple[ParamSpec, ...] = ()
    risk: str = "low"
    auto_safe: bool = False
    approvers: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    body: str = ""
    version: int = 0  # 0 until stored
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.parameters if p.name == name), None)

    def front_matter(self) -> dict[str, Any]:
        """The front matter as plain data (stable order, for export and comparison)."""
        return {
            "id": self.slug, "title": self.title, "services": list(self.services),
            "alert_names": list(self.alert_names), "tags": list(self.tags), "risk": self.risk,
            "auto_safe": self.auto_safe, "approvers": list(self.approvers),
            "allowed_users": list(self.allowed_users), "allowed_channels": list(self.allowed_channels),
            "parameters": {p.name: p.as_dict() for p in self.parameters},
            "steps": [s.as_dict() for s in self.steps],
        }

    def search_text(self) -> str:
        """What text search sees: title, tags, services, alert names, step text and the body."""
        steps = " ".join(f"{s.name} {s.text} {' '.join(s.run)}" for s in self.steps)
        return " ".join([self.title, " ".join(self.tags), " ".join(self.services), " ".join(self.alert_names),
                         steps, self.body])


def _err(source: str, msg: str) -> RunbookFormatError:
    return RunbookFormatError(f"{source}: {msg}" if source else msg)


def _str_list(value: Any, where: str, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise _err(source, f"`{where}` must be a list of strings")
    return tuple(str(v) for v in value)


def _param(name: Any, raw: Any, source: str) -> ParamSpec:
    if not isinstance(name, str) or not _PARAM_NAME.match(name):
        raise _err(source, f"parameter name {name!r} must be lower_snake_case (a-z, 0-9, _)")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _err(source, f"parameter `{name}` must be a mapping (type, allowed, default, ...)")
    unknown = set(raw) - {"type", "description", "required", "default", "allowed", "pattern", "min", "max",
                          "roots"}
    if unknown:
        raise _err(source, f"parameter `{name}` has unknown key(s): {', '.join(sorted(unknown))}")
    ptype = str(raw.get("type", "choice" if raw.get("allowed") else "string"))
    if ptype not in PARAM_TYPES:
        raise _err(source, f"parameter `{name}` type {ptype!r} is not one of {', '.join(PARAM_TYPES)}")
    allowed = _str_list(raw.get("allowed"), f"parameters.{name}.allowed", source)
    if ptype == "choice" and not allowed:
        raise _err(source, f"parameter `{name}` is a choice but lists no `allowed` values")
    roots = _str_list(raw.get("roots"), f"parameters.{name}.roots", source)
    if ptype == "path" and (not roots or not all(r.startswith("/") for r in roots)):
        raise _err(source, f"parameter `{name}` is a path and needs absolute `roots` it must stay under")
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise _err(source, f"parameter `{name}` pattern does not compile: {exc}") from None
    default = raw.get("default")
    for key in ("min", "max"):
        if raw.get(key) is not None and not isinstance(raw.get(key), int):
            raise _err(source, f"parameter `{name}` `{key}` must be an integer")
    return ParamSpec(name=name, type=ptype, description=str(raw.get("description", "")),
                     required=bool(raw.get("required", default is None)),
                     default=None if default is None else str(default), allowed=allowed,
                     pattern=None if pattern is None else str(pattern), minimum=raw.get("min"),
                     maximum=raw.get("max"), roots=roots)


def _check_placeholders(text: str, names: set[str], where: str, source: str) -> None:
    for ref in PLACEHOLDER.findall(text):
        if ref not in names:
            raise _err(source, f"{where} uses `{{{ref}}}`, which is not a declared parameter")


def _step(i: int, raw: Any, names: set[str], source: str) -> StepSpec:
    where = f"step {i + 1}"
    if not isinstance(raw, dict):
        raise _err(source, f"{where} must be a mapping with `kind`")
    kind = str(raw.get("kind", ""))
    if kind not in STEP_KINDS:
        raise _err(source, f"{where} kind {kind!r} is not one of {', '.join(STEP_KINDS)}")
    name = str(raw.get("name") or f"Step {i + 1}")
    try:
        timeout = float(raw.get("timeout_s", 60))
    except (TypeError, ValueError):
        raise _err(source, f"{where} timeout_s must be a number") from None
    if not 0 < timeout <= 3600:
        raise _err(source, f"{where} timeout_s must be between 0 and 3600 seconds")
    if kind == "manual":
        text = str(raw.get("text", "")).strip()
        if not text:
            raise _err(source, f"{where} (manual) needs `text`")
        _check_placeholders(text, names, where, source)
        return StepSpec(name=name, kind=kind, text=text)
    if kind == "shell":
        run = raw.get("run")
        if isinstance(run, str):
            raise _err(source, f"{where} `run` must be a list of arguments (argv), not a shell string")
        if not isinstance(run, list) or not run or not all(isinstance(a, str | int | float) for a in run):
            raise _err(source, f"{where} (shell) needs `run`: a non-empty list of arguments")
        argv = tuple(str(a) for a in run)
        if PLACEHOLDER.search(argv[0]):
            raise _err(source, f"{where}: the command itself (`{argv[0]}`) cannot be a parameter")
        for a in argv:
            _check_placeholders(a, names, where, source)
        return StepSpec(name=name, kind=kind, run=argv, timeout_s=timeout)
    method = str(raw.get("method", "GET")).upper()
    if method not in HTTP_METHODS:
        raise _err(source, f"{where} method {method!r} is not one of {', '.join(HTTP_METHODS)}")
    url = str(raw.get("url", ""))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _err(source, f"{where} (http) needs an absolute http(s) `url`")
    if PLACEHOLDER.search(parts.netloc):
        raise _err(source, f"{where}: the host of the url cannot be a parameter")
    _check_placeholders(url, names, where, source)
    return StepSpec(name=name, kind=kind, method=method, url=url, timeout_s=timeout)


def _split(text: str, source: str) -> tuple[dict[str, Any], str]:
    stripped = text.lstrip("\ufeff")
    if not stripped.startswith("---"):
        raise _err(source, "missing YAML front matter (the file must start with a `---` line)")
    parts = re.split(r"^---[ \t]*$", stripped, maxsplit=2, flags=re.M)
    if len(parts) < 3:
        raise _err(source, "front matter is not closed (no second `---` line)")
    try:
        meta = safe_load(parts[1])
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise _err(source, f"front matter is not valid YAML{line}") from None
    if not isinstance(meta, dict):
        raise _err(source, "front matter must be a mapping")
    return meta, parts[2].strip()


def parse_runbook(text: str, source: str = "") -> RunbookSpec:
    """Parse and validate one runbook file.

    Args:
        text: the file's content.
        source: a name for error messages (usually the path).

    Returns:
        The validated runbook.

    Raises:
        RunbookFormatError: with the file and field at fault.
    """
    meta, body = _split(text, source)
    unknown = set(meta) - _TOP_KEYS
    if unknown:
        raise _err(source, f"unknown front-matter key(s): {', '.join(sorted(map(str, unknown)))}")
    return spec_from_row_fields(meta, body, source)


def spec_from_row_fields(meta: dict[str, Any], body: str = "", source: str = "", version: int = 0
                         ) -> RunbookSpec:
    """Validate front-matter-shaped data (also used to rebuild a spec from a database row)."""
    slug = str(meta.get("id", ""))
    if not _SLUG.match(slug):
        raise _err(source, f"`id` {slug!r} must be lower-case letters, digits and dashes (max 100)")
    title = str(meta.get("title", "")).strip()
    if not title:
        raise _err(source, "`title` is required")
    risk = str(meta.get("risk", "low"))
    if risk not in RISKS:
        raise _err(source, f"`risk` {risk!r} is not one of {', '.join(RISKS)}")
    raw_params = meta.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise _err(source, "`parameters` must be a mapping of name to its definition")
    params = tuple(_param(n, r, source) for n, r in raw_params.items())
    names = {p.name for p in params}
    raw_steps = meta.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _err(source, "`steps` must be a non-empty list")
    steps = tuple(_step(i, s, names, source) for i, s in enumerate(raw_steps))
    approvers = _str_list(meta.get("approvers"), "approvers", source)
    if risk != "low" and not approvers:
        raise _err(source, f"a {risk}-risk runbook needs `approvers`")
    auto_safe = meta.get("auto_safe", False)
    if not isinstance(auto_safe, bool):
        raise _err(source, "`auto_safe` must be true or false")
    if auto_safe and risk != "low":
        raise _err(source, "only a low-risk runbook can be `auto_safe`")
    return RunbookSpec(
        slug=slug, title=title, steps=steps, services=_str_list(meta.get("services"), "services", source),
        alert_names=_str_list(meta.get("alert_names"), "alert_names", source),
        tags=_str_list(meta.get("tags"), "tags", source), parameters=params, risk=risk, auto_safe=auto_safe,
        approvers=approvers, allowed_users=_str_list(meta.get("allowed_users"), "allowed_users", source),
        allowed_channels=_str_list(meta.get("allowed_channels"), "allowed_channels", source),
        body=body, version=version,
    )


def to_markdown(spec: RunbookSpec) -> str:
    """The file form of a runbook (``parse_runbook(to_markdown(s))`` gives ``s`` back)."""
    fm = yaml.safe_dump(spec.front_matter(), sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{fm}---\n{spec.body}\n"
