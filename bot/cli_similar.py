"""CLI of the similar-incident search: ``warroom index rebuild|check``, ``warroom similar``,
``warroom eval similar``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bot.cli import CliError, _settings, app, eval_app

__all__ = ["index_app"]

index_app = typer.Typer(help="The vector index of incidents, postmortems and runbooks.", no_args_is_help=True)
app.add_typer(index_app, name="index")


def _ctx(embedder: str | None = None):  # type: ignore[no-untyped-def]
    from knowledge.db import Database
    from skills.base import SkillContext

    overrides = {"embedder": embedder} if embedder else {}
    settings = _settings(**overrides)
    db = Database(settings.database_url)
    if not db.at_head():
        raise CliError("the database is not migrated: run `warroom db upgrade` (and `warroom seed`)")
    return SkillContext(db=db, data_dir=settings.data_dir, model_dir=settings.models_path, settings=settings)


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Re-embed every incident, postmortem and runbook and write the index from scratch."""
    from knowledge.search import sync_index

    report = sync_index(_ctx(), rebuild=True)
    typer.echo(json.dumps(report.__dict__))


@index_app.command("check")
def index_check(repair: Annotated[bool, typer.Option("--repair/--no-repair",
                                                     help="Fix the drift found (default: report only).")] = False,
                ) -> None:
    """Compare the index on disk with the database: missing, stale, deleted documents (exit 1 on drift)."""
    from knowledge.search import check_index, sync_index

    ctx = _ctx()
    out: dict[str, object] = check_index(ctx)
    drift = bool(out["missing"] or out["stale"] or out["deleted"]) or out["on_disk"] != "ok"
    if repair and drift:
        out["repaired"] = sync_index(ctx).__dict__
    typer.echo(json.dumps(out))
    if drift and not repair:
        raise typer.Exit(1)


@app.command("similar")
def similar(
    text: Annotated[str, typer.Argument(help="An alert, error message, symptom or question.")],
    k: Annotated[int, typer.Option(help="How many results (1..50).")] = 5,
    kind: Annotated[list[str] | None, typer.Option(help="incident, postmortem or runbook (repeatable).")] = None,
    service: Annotated[str | None, typer.Option(help="Prefer this service.")] = None,
    only_service: Annotated[str | None, typer.Option(help="Only documents about this service.")] = None,
    since: Annotated[str | None, typer.Option(help="Only incidents and postmortems since: 7d, 36h, 2w or a date "
                                                   "(UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="... and until: the same forms.")] = None,
    max_severity: Annotated[int | None, typer.Option(min=1, max=4, help="Only SEV1 up to this one.")] = None,
    resolved: Annotated[bool, typer.Option("--resolved", help="Only resolved incidents.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search past incidents, postmortems and runbooks like `/similar` does in Slack (its filters too)."""
    from knowledge.models import utcnow
    from knowledge.search import KINDS, SearchError, search
    from skills.search_filters import FilterError, Filters, parse_when

    ctx = _ctx()
    now = utcnow()
    try:
        filters = Filters(service=only_service.lower() if only_service else None,
                          since=parse_when(since, now, "since") if since else None,
                          until=parse_when(until, now, "until") if until else None,
                          max_severity=max_severity, resolved_only=resolved)
    except FilterError as exc:
        raise CliError(str(exc).replace("`since:", "`--since ").replace("`until:", "`--until ")) from None
    t0 = time.perf_counter()
    try:
        hits = search(ctx, text=text, kinds=tuple(kind) if kind else KINDS, service=service or filters.service, k=k,
                      **filters.search_args())
    except SearchError as exc:
        raise CliError(str(exc)) from None
    ms = (time.perf_counter() - t0) * 1000
    if as_json:
        typer.echo(json.dumps({"ms": round(ms, 1), "hits": [h.__dict__ for h in hits]}))
        return
    for n, h in enumerate(hits, 1):
        typer.echo(f"{n}. [{h.score:.2f}] {h.link}: {h.title}\n   why: {h.why}")
        if h.resolution:
            typer.echo(f"   fix: {h.resolution[:200]}")
    if not hits:
        typer.echo("nothing found" + (f" (only {filters.describe()})" if filters else ""))


@eval_app.command("similar")
def eval_similar(
    data: Annotated[Path, typer.Option(help="Postmortems (JSON lines or CSV).")],
    text_field: Annotated[str, typer.Option(help="Field with the text.")] = "description",
    label_field: Annotated[str, typer.Option(help="Field with the relevance label.")] = "danluu_section",
    exclude_label: Annotated[list[str] | None, typer.Option(help="Label to leave out (repeatable).")] = None,
    runbooks: Annotated[Path | None, typer.Option(
        help="Folder with runbook_corpus.jsonl and alerts_kube_prometheus.jsonl (default: ../runbooks "
             "next to the data's folder, when present; 'none' to skip).")] = None,
    encoder: Annotated[str | None, typer.Option(help="minilm or hash (default: the embedder setting).")] = None,
    mask_field: Annotated[str, typer.Option(
        help="Also measure with the names in this field (the company) masked in every text, as a separate "
             "figure ('masked' in the JSON); 'none' to skip.")] = "company",
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of metrics.")] = False,
) -> None:
    """Same-label P@5 and MRR on postmortems, and the runbook retrieval test, each vs TF-IDF."""
    from knowledge.embedder import get_encoder
    from knowledge.search_eval import EvalDataError, eval_postmortems, eval_runbooks, read_rows

    enc_name = encoder or _settings().embedder
    if enc_name not in ("minilm", "hash"):
        raise CliError(f"unknown encoder {enc_name!r} (minilm or hash)")
    enc = get_encoder(enc_name)
    t0 = time.perf_counter()
    try:
        result = eval_postmortems(read_rows(data), text_field=text_field, label_field=label_field,
                                  exclude_labels=set(exclude_label if exclude_label is not None else ["Uncategorized"]),
                                  encoder=enc, mask_field=None if mask_field == "none" else mask_field)
        rb_dir = runbooks if runbooks is not None else data.resolve().parent.parent / "runbooks"
        if str(runbooks) != "none" and (rb_dir / "runbook_corpus.jsonl").is_file():
            result["runbooks"] = eval_runbooks(read_rows(rb_dir / "runbook_corpus.jsonl"),
                                               read_rows(rb_dir / "alerts_kube_prometheus.jsonl"), enc)
        elif runbooks is not None and str(runbooks) != "none":
            raise CliError(f"{rb_dir}: no runbook_corpus.jsonl there")
    except EvalDataError as exc:
        raise CliError(str(exc)) from None
    result["seconds"] = round(time.perf_counter() - t0, 1)
    typer.echo(f"postmortems ({result['n_queries']} queries, encoder {result['encoder']}): "
               f"P@5 {result['p_at_5']:.3f} MRR {result['mrr']:.3f} | TF-IDF P@5 {result['baseline_p_at_5']:.3f} "
               f"MRR {result['baseline_mrr']:.3f} | dense only P@5 {result['dense_only_p_at_5']:.3f} | "
               f"BM25 only P@5 {result['bm25_only_p_at_5']:.3f} | random P@5 {result['random_p_at_5']:.3f}")
    if "masked" in result:
        m = result["masked"]
        typer.echo(f"  {m['field']} names masked ({m['texts_changed']} texts changed): P@5 {m['p_at_5']:.3f} "
                   f"MRR {m['mrr']:.3f} | TF-IDF P@5 {m['baseline_p_at_5']:.3f} | "
                   f"dense only P@5 {m['dense_only_p_at_5']:.3f}")
    if "runbooks" in result:
        r = result["runbooks"]
        typer.echo(f"runbooks ({r['n_queries']} alerts, {r['n_runbooks']} runbooks): top-1 {r['top1']:.3f} "
                   f"top-3 {r['top3']:.3f} MRR {r['mrr']:.3f} | TF-IDF top-1 {r['baseline_top1']:.3f} "
                   f"top-3 {r['baseline_top3']:.3f} MRR {r['baseline_mrr']:.3f}")
    if as_json:
        typer.echo(json.dumps(result))
