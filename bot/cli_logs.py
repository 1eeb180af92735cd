"""CLI of the log skill: ``warroom logs classify FILE``, ``warroom train logs``, ``warroom eval logs``."""

from __future__ import annotations

import codecs
import json
import lzma
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer

from bot.cli import CliError, _settings, app, eval_app, train_app
from skills.redact import strip_ansi

__all__ = ["logs_app", "iter_log_lines"]

logs_app = typer.Typer(help="Log classification (severity, category, templates).", no_args_is_help=True)
app.add_typer(logs_app, name="logs")

_MAX_LINE_BYTES = 16_384
_BATCH = 20_000


def iter_log_lines(fh: IO[bytes], notes: list[str], max_line_bytes: int = _MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a binary stream, decoded as UTF-8 (bad bytes replaced); a line longer than
    ``max_line_bytes`` is cut and the rest skipped without ever being held in memory."""
    cut = bad = 0
    while True:
        raw = fh.readline(max_line_bytes)
        if not raw:
            break
        if not raw.endswith(b"\n") and len(raw) >= max_line_bytes:
            cut += 1
            while True:  # drain the rest of an over-long line in bounded pieces
                rest = fh.readline(max_line_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
        line = raw.decode("utf-8", errors="replace")
        if "\ufffd" in line:
            bad += 1
        line = strip_ansi(line).strip().lstrip("\ufeff")  # a line of colour codes alone is no log line; no BOM
        if line:
            yield line
    if cut:
        notes.append(f"{cut:,} line(s) longer than {max_line_bytes:,} bytes were cut")
    if bad:
        notes.append(f"{bad:,} line(s) had bytes that are not UTF-8 (replaced)")


def _ctx(remember: bool):  # type: ignore[no-untyped-def]
    from knowledge.db import Database
    from skills.base import SkillContext

    settings = _settings()
    settings.models_path.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    if remember:
        db.upgrade()
    return SkillContext(db=db, data_dir=settings.data_dir, model_dir=settings.models_path, settings=settings)


@logs_app.command("classify")
def classify(
    file: Annotated[Path, typer.Argument(help="A log file (any size; '-' reads stdin).")],
    lines: Annotated[bool, typer.Option("--lines", help="Print one TSV row per line: "
                                                        "line, severity, category, template id.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    top: Annotated[int, typer.Option(help="Templates shown in the summary.")] = 15,
    remember: Annotated[bool, typer.Option("--remember/--no-remember",
                                           help="Compare with and store templates in the knowledge base.")] = True,
) -> None:
    """Classify every line of a log file (streamed), then summarise its templates (new ones flagged)."""
    from skills.log_engine import (
        LogAnalyzer,
        NotLogs,
        compression_of,
        decode_log_bytes,
        get_model,
        open_decompressed,
        utf16_of,
    )

    if str(file) != "-" and not file.is_file():
        raise CliError(f"{file} is not a readable file")
    ctx = _ctx(remember)
    analyzer = LogAnalyzer(get_model(ctx))
    raw: IO[bytes] = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    fh = raw
    n = 0
    batch: list[str] = []
    compressed = False
    try:
        try:
            head = raw.peek(8192)[:8192] if hasattr(raw, "peek") else b""
            fh = open_decompressed(raw, head)  # a rotated syslog.2.gz reads as its lines
            compressed = fh is not raw
            if fh is not raw:
                analyzer.notes.append(f"decompressed ({compression_of(head)})")
                head = fh.peek(8192)[:8192] if hasattr(fh, "peek") else b""
            decode_log_bytes(head)
            if codec := utf16_of(head):  # a Windows PowerShell log: read as UTF-8 lines, in pieces as ever
                fh = codecs.EncodedFile(fh, "utf-8", codec, errors="replace")  # type: ignore[assignment]
                analyzer.notes.append("read as UTF-16 (as Windows PowerShell writes files)")
        except NotLogs as exc:
            raise CliError(f"{file}: {exc}") from None
        for line in iter_log_lines(fh, analyzer.notes):
            batch.append(line)
            if len(batch) >= _BATCH:
                n = _flush(analyzer, batch, n, lines)
                batch = []
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        if not compressed:
            raise CliError(f"cannot read {file}: {exc}") from None
        # cut short (a rotated log copied while being written) or damaged: keep what came before
        analyzer.notes.append(f"the compressed file ends early or is damaged ({type(exc).__name__}); "
                              "the lines before that point were read")
    finally:
        if fh is not raw:
            fh.close()
        if raw is not sys.stdin.buffer:
            raw.close()
    n = _flush(analyzer, batch, n, lines)
    if n == 0:
        damaged = [note for note in analyzer.notes if "damaged" in note]
        raise CliError(f"{file}: {damaged[0]}" if damaged else f"{file} holds no log lines")
    report = analyzer.report(ctx if remember else None, remember=remember)
    if as_json:
        typer.echo(json.dumps(report.to_dict(top=top)))
        return
    out = sys.stderr if lines else sys.stdout
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report.severity_counts.items()))
    n, t = report.n_lines, len(report.templates)
    print(f"{n:,} line{'s' * (n != 1)}, {t} template{'s' * (t != 1)} ({counts}); "
          f"{len(report.new_templates)} new", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    for t in report.templates[:top]:
        print(f"{t.severity:7s} {t.count:>9,} {'NEW' if t.new else '   '} {t.category:13s} {t.template[:160]}",
              file=out)


def _flush(analyzer, batch: list[str], n: int, per_line: bool) -> int:  # type: ignore[no-untyped-def]
    preds = analyzer.feed(batch)
    if per_line:
        from models.log_miner import template_id

        rows = []
        for kid, p in preds:
            n += 1
            rows.append(f"{n}\t{p.severity}\t{p.category}\t{template_id(analyzer.miner.template_of(kid))}")
        sys.stdout.write("\n".join(rows) + ("\n" if rows else ""))
        return n
    return n + len(preds)


@train_app.command("logs")
def train_logs(
    data: Annotated[list[Path] | None, typer.Option("--data", help="CSV with text, severity[, category] "
                                                                   "(repeatable).")] = None,
    bundled: Annotated[bool, typer.Option("--bundled/--no-bundled", help="Include the bundled examples.")] = True,
) -> None:
    """Train the severity and category classifiers and save them with their origin record."""
    from models.log_classifier import LogClassifier, save_log_model
    from models.log_data import LabelledLine, load_examples
    from models.log_features import SEVERITIES

    examples: list[LabelledLine] = load_examples() if bundled else []
    sources = ["bundled examples"] if bundled else []
    for path in data or []:
        try:
            got = load_examples(path)
        except (OSError, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise CliError(f"cannot read {path}: {exc}") from None
        bad = sorted({e.severity for e in got} - set(SEVERITIES))
        if bad:
            raise CliError(f"{path}: unknown severity {bad[0]!r} (use {', '.join(SEVERITIES)})")
        if not got:
            raise CliError(f"{path}: no rows with 'text' and 'severity' columns")
        examples += got
        sources.append(str(path))
    if len({e.severity for e in examples}) < 2:
        raise CliError("need labelled lines of at least two severities")
    texts, sev = [e.text for e in examples], [e.severity for e in examples]
    model = LogClassifier().fit(texts, sev, [e.category for e in examples])
    settings = _settings()
    record = save_log_model(model, settings.models_path, texts=texts, labels=sev, source=", ".join(sources),
                            metrics={"n_per_severity": {s: sev.count(s) for s in SEVERITIES}})
    typer.echo(json.dumps({"saved": str(record), "n_train": len(texts), "sources": sources}))


@eval_app.command("logs")
def eval_logs(
    data: Annotated[Path, typer.Option("--data", help="Loghub-format directory (loghub_2k).")],
    as_json: Annotated[bool, typer.Option("--json", help="Last line: one JSON object of metrics.")] = False,
    splits: Annotated[int, typer.Option(help="Template-disjoint severity splits.")] = 10,
    alert_splits: Annotated[int, typer.Option(help="Template-disjoint BGL alert splits.")] = 20,
) -> None:
    """Severity, BGL alerts, template grouping and throughput, each next to its baseline."""
    from models.log_eval import EvalError, evaluate

    try:
        result = evaluate(data, n_splits=splits, n_alert_splits=alert_splits,
                          progress=lambda m: print(f"eval logs: {m}", file=sys.stderr))
    except EvalError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    for k, v in result.items():
        typer.echo(f"{k}: {v}")
