"""Safe runbook execution: parameter checks, the exact plan (dry-run preview) and the step runner.

Rules enforced here, whatever a runbook file says:

- parameter values are checked against their declared type and allowed set, and refused when they
  carry shell metacharacters, whitespace, a leading ``-`` (option injection) or ``..`` (traversal);
- shell steps run only commands from the allow-list, as an argv list through ``subprocess`` (never a
  shell string), with placeholders replaced inside single arguments;
- the child gets a scrubbed environment (a fixed PATH and locale, nothing of the bot's), a timeout,
  its own process group (killed on timeout or cancellation) and an output cap;
- http steps go only to allow-listed hosts, without following redirects.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx

from knowledge.runbooks import PLACEHOLDER, RunbookSpec
from skills.base import SkillError
from skills.redact import mask_secrets

__all__ = [
    "ExecPolicy", "PlannedStep", "StepOutcome", "ParameterRefused", "validate_params", "plan",
    "preview_lines", "run_step", "DEFAULT_COMMANDS", "SAFE_PATH",
]

DEFAULT_COMMANDS = ("kubectl", "helm", "redis-cli", "cmctl", "systemctl", "journalctl", "df", "du", "find",
                    "uptime", "free", "ls")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_METACHARS = set(";&|$`<>(){}[]*?!~'\"\\#%^\n\r\t\x00 ")
_INT = re.compile(r"^-?[0-9]{1,9}$")
_DEFAULT_STRING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/=+,-]{0,199}$")


class ParameterRefused(SkillError):
    """A parameter value that is not allowed; the message says which and why."""


@dataclass(frozen=True)
class ExecPolicy:
    """What this bot may run: command and host allow-lists, limits."""

    allowed_commands: tuple[str, ...] = DEFAULT_COMMANDS
    allowed_hosts: tuple[str, ...] = ()
    output_cap: int = 16_000
    max_timeout_s: float = 600.0


@dataclass(frozen=True)
class PlannedStep:
    """One step with its parameters filled in: exactly what would run."""

    index: int
    name: str
    kind: str
    argv: tuple[str, ...] = ()
    method: str = ""
    url: str = ""
    text: str = ""
    timeout_s: float = 60.0
    blocked: str | None = None  # why this step cannot run here


@dataclass(frozen=True)
class StepOutcome:
    status: str  # ok, failed, timeout, cancelled, blocked, manual
    output: str
    exit_code: int | None = None
    seconds: float = 0.0


def _check_value(name: str, value: str) -> None:
    bad = sorted({c for c in value if c in _METACHARS})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ParameterRefused(f"`{name}` contains characters that are never allowed in a parameter ({shown})")
    if ".." in value:
        raise ParameterRefused(f"`{name}` contains `..` (path traversal is refused)")
    if value.startswith("-"):
        raise ParameterRefused(f"`{name}` cannot start with `-` (it would be read as an option)")
    if not value or len(value) > 200:
        raise ParameterRefused(f"`{name}` must be 1 to 200 characters")


def _check_typed(spec: RunbookSpec, name: str, value: str) -> str:
    p = spec.param(name)
    assert p is not None
    if p.type == "int":
        if not _INT.match(value):
            raise ParameterRefused(f"`{name}` must be a whole number, got `{value}`")
        n = int(value)
        if (p.minimum is not None and n < p.minimum) or (p.maximum is not None and n > p.maximum):
            raise ParameterRefused(f"`{name}`={n} is outside the allowed range {p.minimum}..{p.maximum}")
        return str(n)
    _check_value(name, value)
    if p.type == "choice" and value not in p.allowed:
        raise ParameterRefused(f"`{name}`=`{value}` is not one of the allowed values: {', '.join(p.allowed)}")
    if p.type == "path":
        norm = posixpath.normpath(value)
        if not value.startswith("/") or not any(norm == r.rstrip("/") or norm.startswith(r.rstrip("/") + "/")
                                                for r in p.roots):
            raise ParameterRefused(f"`{name}` must be an absolute path under {', '.join(p.roots)}")
        return norm
    if p.type == "string":
        rx = re.compile(p.pattern) if p.pattern else _DEFAULT_STRING
        if not rx.fullmatch(value):
            raise ParameterRefused(f"`{name}`=`{value}` does not match the allowed pattern")
    return value


def validate_params(spec: RunbookSpec, given: dict[str, str]) -> dict[str, str]:
    """Check every given value and fill defaults.

    Raises:
        ParameterRefused: for an unknown, missing or disallowed parameter.
    """
    known = {p.name for p in spec.parameters}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ParameterRefused(f"`{spec.slug}` has no parameter {', '.join(f'`{u}`' for u in unknown)} "
                               f"(it takes: {', '.join(sorted(known)) or 'none'})")
    out: dict[str, str] = {}
    for p in spec.parameters:
        if p.name in given:
            out[p.name] = _check_typed(spec, p.name, str(given[p.name]))
        elif p.default is not None:
            out[p.name] = _check_typed(spec, p.name, p.default)
        elif p.required:
            hint = f" (one of: {', '.join(p.allowed)})" if p.allowed else ""
            raise ParameterRefused(f"`{spec.slug}` needs `{p.name}=...`{hint}")
    return out


def _fill(template: str, params: dict[str, str], url: bool = False) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            return m.group(0)
        v = params[m.group(1)]
        return quote(v, safe="") if url else v

    return PLACEHOLDER.sub(sub, template)


def plan(spec: RunbookSpec, params: dict[str, str], policy: ExecPolicy) -> tuple[PlannedStep, ...]:
    """Fill the (already validated) parameters into every step; mark steps that cannot run here."""
    out = []
    for i, s in enumerate(spec.steps, start=1):
        name = _fill(s.name, params)
        timeout = min(s.timeout_s, policy.max_timeout_s)
        if s.kind == "manual":
            out.append(PlannedStep(i, name, s.kind, text=_fill(s.text, params), timeout_s=timeout))
        elif s.kind == "shell":
            argv = tuple(_fill(a, params) for a in s.run)
            blocked = None if argv[0] in policy.allowed_commands else \
                f"`{argv[0]}` is not on this bot's command allow-list"
            out.append(PlannedStep(i, name, s.kind, argv=argv, timeout_s=timeout, blocked=blocked))
        else:
            url = _fill(s.url, params, url=True)
            host = urlsplit(url).hostname or ""
            blocked = None if host in policy.allowed_hosts else f"host `{host}` is not on the http allow-list"
            out.append(PlannedStep(i, name, s.kind, method=s.method, url=url, timeout_s=timeout, blocked=blocked))
    return tuple(out)


def preview_lines(steps: tuple[PlannedStep, ...]) -> list[str]:
    """The dry-run preview: one line per step, exactly as it would run (argv shown as a list)."""
    lines = []
    for s in steps:
        if s.kind == "shell":
            what = "`" + " ".join(_show(a) for a in s.argv) + f"` (timeout {s.timeout_s:g}s)"
        elif s.kind == "http":
            what = f"`{s.method} {s.url}` (timeout {s.timeout_s:g}s)"
        else:
            what = f"manual: {s.text}"
        flag = f"  :no_entry: {s.blocked}" if s.blocked else ""
        lines.append(f"{s.index}. *{s.name}* [{s.kind}] {what}{flag}")
    return lines


def _show(arg: str) -> str:
    return arg if arg and not any(c in _METACHARS for c in arg) else repr(arg)


def _scrubbed_env(home: str) -> dict[str, str]:
    # Nothing from os.environ: the bot's tokens, database URL and cloud credentials stay behind.
    return {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home, "TERM": "dumb"}


def _read_capped(stream, cap: int, sink: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    size = 0
    while True:
        chunk = stream.read(4096)
        if not chunk:
            break
        if size < cap:
            sink.append(chunk[: cap - size])
        size += len(chunk)
    if size > cap:
        sink.append(f"\n… (output cut: {size - cap} more bytes)".encode())


def _run_shell(step: PlannedStep, policy: ExecPolicy, should_cancel: Callable[[], bool]) -> StepOutcome:
    exe = shutil.which(step.argv[0], path=SAFE_PATH)
    if exe is None:
        return StepOutcome("failed", f"`{step.argv[0]}` is not installed on this host")
    start = time.monotonic()
    sink: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="warroom-step-") as home:
        proc = subprocess.Popen([exe, *step.argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S603
                                stderr=subprocess.STDOUT, env=_scrubbed_env(home), cwd=home,
                                start_new_session=True, close_fds=True)
        reader = threading.Thread(target=_read_capped, args=(proc.stdout, policy.output_cap, sink), daemon=True)
        reader.start()
        status = "ok"
        while proc.poll() is None:
            if time.monotonic() - start > step.timeout_s:
                status = "timeout"
            elif should_cancel():
                status = "cancelled"
            if status != "ok":
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.05)
        proc.wait()
        try:  # what the step left running in its group (a forked helper) ends with the step: nothing unaudited
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        reader.join(5)
    out = mask_secrets(b"".join(sink).decode("utf-8", "replace"))
    code = proc.returncode
    if status == "ok" and code != 0:
        status = "failed"
    if status == "timeout":
        out += f"\n(killed after {step.timeout_s:g}s timeout)"
    return StepOutcome(status, out, code, time.monotonic() - start)


def _run_http(step: PlannedStep, policy: ExecPolicy) -> StepOutcome:
    start = time.monotonic()
    try:
        with httpx.Client(timeout=step.timeout_s, follow_redirects=False, trust_env=False) as client, \
                client.stream(step.method, step.url) as resp:
            raw, more = bytearray(), False
            for chunk in resp.iter_bytes():  # streamed: a 2 GB answer must not be read whole to show 64 KB
                raw += chunk
                if len(raw) > policy.output_cap:
                    more = True
                    break
    except httpx.HTTPError as exc:
        return StepOutcome("failed", f"{type(exc).__name__}: {exc}", None, time.monotonic() - start)
    body = bytes(raw[: policy.output_cap]).decode(resp.encoding or "utf-8", "replace")
    if more:
        body += "\n… (output cut)"
    status = "ok" if resp.status_code < 400 else "failed"
    return StepOutcome(status, mask_secrets(f"HTTP {resp.status_code}\n{body}"), resp.status_code,
                       time.monotonic() - start)


def run_step(step: PlannedStep, policy: ExecPolicy, should_cancel: Callable[[], bool] = lambda: False
             ) -> StepOutcome:
    """Run one planned step (manual steps only return their text)."""
    if step.blocked:
        return StepOutcome("blocked", step.blocked)
    if step.kind == "manual":
        return StepOutcome("manual", step.text)
    if step.kind == "shell":
        if step.argv[0] not in policy.allowed_commands:  # re-checked: the plan may come from an old policy
            return StepOutcome("blocked", f"`{step.argv[0]}` is not on this bot's command allow-list")
        return _run_shell(step, policy, should_cancel)
    if (urlsplit(step.url).hostname or "") not in policy.allowed_hosts:
        return StepOutcome("blocked", "host is not on the http allow-list")
    return _run_http(step, policy)
