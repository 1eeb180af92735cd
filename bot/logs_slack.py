"""Bot side of the log skill: reading uploaded files through the Slack Web API.

Installs the file fetcher the skill uses for message shortcuts and mentions with files, and the
``slack.file_shared`` job: a text file uploaded into an incident channel is classified and the
summary posted there (the incident card gets the finding). Files elsewhere are left alone.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from bot.slack_client import FileUnavailable, SlackApiError
from skills.base import SkillError, SkillResult
from skills.logs import FILE_FETCHER, MAX_FILE_BYTES, LogsSkill

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["register", "LOG_SUFFIXES"]

log = logging.getLogger("warroom.logs")

LOG_SUFFIXES = (".log", ".txt", ".out", ".err", ".csv", ".json", ".jsonl")
_TEXT_TYPES = {"text", "log", "plain", "csv", "json", "javascript", "shell", "python", "java", "yaml"}


def _fetcher(services: Services) -> Any:
    def fetch(file_id: str) -> tuple[str, bytes]:
        try:
            info = services.poster.file_info(file_id)
            return str(info.get("name") or file_id), services.poster.download(info, MAX_FILE_BYTES)
        except FileUnavailable as exc:
            raise SkillError(f"I did not read it: {exc}.") from None
        except (SlackApiError, KeyError, OSError) as exc:
            raise SkillError(f"I could not download file {file_id} from Slack ({type(exc).__name__}).") from None

    return fetch


# Rotated logs, compressed: app.log.gz, syslog.2.gz, access.log.1.xz (not backup.tar.gz)
_COMPRESSED_LOG = re.compile(r"(\.(log|txt|out|err|csv|json|jsonl)(\.\d+)?|\.\d+)\.(gz|bz2|xz)$")


def _is_log_file(info: dict[str, Any]) -> bool:
    name = str(info.get("name") or "").lower()
    return (name.endswith(LOG_SUFFIXES) or bool(_COMPRESSED_LOG.search(name))
            or str(info.get("filetype") or "").lower() in _TEXT_TYPES)


def file_shared(services: Services, payload: dict[str, Any]) -> None:
    """Classify a text file uploaded into an incident channel and post the summary there."""
    from bot.handlers import deliver, follow_up

    event = payload.get("event") or {}
    file_id = event.get("file_id") or (event.get("file") or {}).get("id")
    channel = event.get("channel_id")
    if not file_id or not channel:
        return
    incident_id = LogsSkill.incident_for_channel(services.ctx, channel)
    if incident_id is None:
        return
    try:
        info = services.poster.file_info(file_id)
    except (SlackApiError, KeyError, FileUnavailable) as exc:
        log.warning("files.info failed for %s: %s", file_id, exc)
        return
    if not _is_log_file(info):
        return
    skill = services.registry.get("logs")
    if not isinstance(skill, LogsSkill):
        return
    try:
        data = services.poster.download(info, MAX_FILE_BYTES)
        result = skill.analyze_file(str(info.get("name") or file_id), data, services.ctx, incident_id=incident_id)
    except FileUnavailable as exc:
        result = SkillResult(title="Log classification: cannot read that file", summary=f"I did not read it: {exc}.",
                             ok=False)
    except SkillError as exc:
        result = SkillResult(title="Log classification: cannot read that file", summary=str(exc), ok=False)
    except OSError as exc:
        result = SkillResult(title="Log classification: cannot read that file",
                             summary=f"Downloading it from Slack failed ({type(exc).__name__}).", ok=False)
    deliver(services, result, {"channel": channel, "user": event.get("user_id")})
    follow_up(services, result)


def register(services: Services) -> None:
    """Give the skill its file fetcher and register ``slack.file_shared``."""
    services.ctx.resources[FILE_FETCHER] = _fetcher(services)
    services.runner.register("slack.file_shared", lambda payload: file_shared(services, payload))
