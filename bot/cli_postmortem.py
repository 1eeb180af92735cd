"""``warroom eval postmortems`` and ``warroom postmortem draft|show|export``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli import CliError, _settings, app, eval_app

__all__ = ["postmortem_app"]

postmortem_app = typer.Typer(help="Postmortems: draft, show and export to Markdown files.", no_args_is_help=True)
app.add_typer(postmortem_app, name="postmortem")


@eval_app.command("postmortems")
def eval_postmortems(
    scenarios: Annotated[Path | None, typer.Option(help="Scenarios YAML (default: the bundled ones).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    llm_base_url: Annotated[str | None, typer.Option(help="Also evaluate the LLM writer at this endpoint.")] = None,
    llm_model: Annotated[str, typer.Option(help="Model name for --llm-base-url.")] = "gpt-4o-mini",
    llm_api_key: Annotated[str, typer.Option(envvar="WARROOM_EVAL_LLM_KEY", help="API key for the endpoint.")]
    = "not-needed",
) -> None:
    """Sections filled, faithfulness and action items found vs planted, on written incident scenarios."""
    from skills.postmortem_eval import SCENARIOS, TemplateBaseline, evaluate, load_scenarios
    from skills.postmortem_writers import DeterministicWriter, PostmortemWriter

    path = scenarios or SCENARIOS
    try:
        data = load_scenarios(path)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read scenarios: {exc}") from None
    writers: list[PostmortemWriter] = [DeterministicWriter(), TemplateBaseline()]
    if llm_base_url:
        from skills.postmortem_llm import LLMWriter

        writers.append(LLMWriter(base_url=llm_base_url, model=llm_model, api_key=llm_api_key))
    try:
        report = evaluate(data, writers)
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"a scenario has the wrong shape: {exc}") from None
    for row in report["rows"]:
        typer.echo(f"{row['scenario']:<30} {row['writer']:<14} sections {row['sections_filled']:.2f}  "
                   f"faithful {row['faithfulness']:.3f} ({row['claims']} claims)  actions "
                   f"{row['found']}/{row['planted']} (owners {row['owners_correct']}, extracted {row['extracted']})")
    det = report["writers"]["deterministic"]
    ck = report["checker"]
    out: dict[str, Any] = {
        "scenarios": report["scenarios"], "writer": "deterministic", **det,
        "checker_hallucinations_removed": ck["hallucinated_removed"],
        "checker_hallucinations_planted": ck["hallucinated_planted"],
        "checker_supported_kept": ck["supported_kept"], "checker_supported_total": ck["supported_total"],
        "baseline": {"name": "template (incident row only)", **report["writers"]["template"]},
        "data": str(path),
    }
    if "llm" in report["writers"]:
        out["llm"] = report["writers"]["llm"]
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(json.dumps(out, indent=2))


def _ctx() -> Any:
    from knowledge.db import Database
    from skills.base import SkillContext

    settings = _settings()
    db = Database(settings.database_url)
    db.upgrade()
    return SkillContext(db=db, data_dir=settings.data_dir, model_dir=settings.models_path, settings=settings)


def _say(result: Any) -> None:
    typer.echo(result.title)
    if result.summary:
        typer.echo(result.summary)
    for k, v in result.fields:
        typer.echo(f"  {k}: {v}")


@postmortem_app.command("draft")
def pm_draft(incident: int, regenerate: Annotated[bool, typer.Option(help="Write a new version.")] = False) -> None:
    """Draft (or reuse the unchanged draft of) an incident's postmortem and print its Markdown."""
    from skills.base import SkillError
    from skills.postmortem import PostmortemSkill

    try:
        result = PostmortemSkill().draft(incident, _ctx(), user=None, force=regenerate)
    except SkillError as exc:
        raise CliError(str(exc)) from None
    _say(result)
    typer.echo(result.attachments[0].content.decode())


@postmortem_app.command("show")
def pm_show(incident: int) -> None:
    """Print the newest version of an incident's postmortem."""
    from skills.base import SkillError
    from skills.postmortem import PostmortemSkill

    try:
        result = PostmortemSkill().show(incident, _ctx())
    except SkillError as exc:
        raise CliError(str(exc)) from None
    typer.echo(result.attachments[0].content.decode())


@postmortem_app.command("export")
def pm_export(
    directory: Path,
    status: Annotated[str, typer.Option(help="Which versions: published (newest published) or latest.")]
    = "published",
) -> None:
    """Write each incident's postmortem as a Markdown file into DIRECTORY."""
    from knowledge import postmortems as store

    if status not in ("published", "latest"):
        raise CliError("--status must be 'published' or 'latest'")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {directory}: {exc}") from None
    ctx = _ctx()
    n = 0
    with ctx.db.session() as s:
        for top in store.list_latest(s, limit=100000):
            row = top if status == "latest" else store.latest(s, incident_id=top.incident_id or 0,
                                                               status="published")
            if row is None:
                continue
            slug = re.sub(r"[^a-z0-9]+", "-", row.title.lower()).strip("-")[:60] or "postmortem"
            target = directory / f"incident-{row.incident_id}-{slug}.md"
            try:
                target.write_text(row.markdown, encoding="utf-8")
            except OSError as exc:
                raise CliError(f"cannot write {target}: {exc}") from None
            n += 1
    typer.echo(f"wrote {n} postmortem(s) to {directory}")
