"""CLI of the failure-risk skill: ``warroom train risk``, ``warroom risk predict``, ``warroom eval risk``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli import CliError, _settings, app, eval_app, train_app

__all__ = ["risk_app"]

risk_app = typer.Typer(help="Failure-risk prediction from metrics.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")


_DECIMAL_COMMA = r"[+-]?\d+(?:,\d+)?"


def _read_table(path: Path, only_blank_missing: bool = False) -> Any:
    """The CSV as a frame; ``only_blank_missing``: only an empty cell is a missing value ("NaN" stays text, and is
    refused as a number)."""
    import pandas as pd

    from knowledge.csvfile import file_delimiter

    try:
        sep = file_delimiter(path)  # Excel's semicolons too
        df = pd.read_csv(path, sep=sep, **({"keep_default_na": False, "na_values": [""]} if only_blank_missing
                                           else {}))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    if sep == ";":  # where Excel separates with semicolons, it writes 85,5 for 85.5
        for col in df.columns:
            values = df[col].dropna().astype(str)
            if pd.api.types.is_numeric_dtype(df[col]) or not len(values):
                continue
            if values.str.fullmatch(_DECIMAL_COMMA).all() and values.str.contains(",").any():
                df[col] = pd.to_numeric(values.str.replace(",", ".", regex=False)).reindex(df.index)
    return df


def _csv_training_rows(path: Path, label_col: str) -> tuple[list[dict[str, float]], list[int]]:
    from skills.risk_engine import RiskInputError, validate_snapshot

    df = _read_table(path)
    if label_col not in df.columns:
        raise CliError(f"{path}: no {label_col!r} column (0 = stayed healthy, 1 = failed within the hour)")
    metric_cols = [c for c in df.columns if c != label_col and c not in ("timestamp", "time", "service")]
    rows, labels = [], []
    for i, rec in enumerate(df.to_dict("records"), start=2):
        lab = rec[label_col]
        if lab not in (0, 1, 0.0, 1.0):
            raise CliError(f"{path} line {i}: {label_col}={lab!r}; labels must be 0 or 1")
        values = {c: rec[c] for c in metric_cols if not (isinstance(rec[c], float) and math.isnan(rec[c]))}
        try:
            rows.append(validate_snapshot(values))
        except RiskInputError as exc:
            raise CliError(f"{path} line {i}: {exc}") from None
        labels.append(int(lab))
    if not rows:
        raise CliError(f"{path} has no rows")
    return rows, labels


@train_app.command("risk")
def train_risk(
    csv: Annotated[list[Path] | None, typer.Option("--csv", help="Labelled snapshots to add (repeatable).")] = None,
    label_col: Annotated[str, typer.Option(help="Label column of the CSV files.")] = "label",
    episodes: Annotated[int, typer.Option(min=200, max=200_000, help="Synthetic episodes.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic generator.")] = 0,
) -> None:
    """Train the risk model on synthetic failure scenarios (plus your CSV) and save it under the model dir."""
    from models.risk_artifact import csv_dataset, train_risk_model

    extra, sources = None, []
    rows: list[dict[str, float]] = []
    labels: list[int] = []
    for p in csv or []:
        r, lab = _csv_training_rows(p, label_col)
        rows += r
        labels += lab
        sources.append(str(p))
    if rows:
        extra = csv_dataset(rows, labels)
    settings = _settings()
    start = time.perf_counter()
    try:
        loaded = train_risk_model(settings.models_path, n_episodes=episodes, seed=seed, extra=extra,
                                  extra_source=", ".join(sources))
    except ValueError as exc:
        raise CliError(f"cannot train: {exc}") from None
    typer.echo(json.dumps({"version": loaded.version, "chosen": loaded.record["chosen"],
                           "calibration": loaded.record["calibration"]["method"],
                           "validation": loaded.record["validation"], "rows": loaded.record["data"]["rows"],
                           "seconds": round(time.perf_counter() - start, 1),
                           "saved_to": str(settings.models_path / "risk")}))


def _window_from_file(path: Path) -> Any:
    from bot.api import RiskRequest
    from skills.risk_engine import RiskInputError, validate_window

    if path.suffix.lower() == ".json":
        try:
            body = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {path}: {exc}") from None
        except RecursionError:
            raise CliError(f"cannot read {path}: its JSON is nested too deeply") from None
        key = "prometheus" if isinstance(body, dict) and "data" in body else "window"
        from pydantic import ValidationError

        try:
            req = RiskRequest.model_validate({key: body})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise CliError(f"{path}: {'.'.join(map(str, err['loc'][1:])) or key}: {err['msg']}") from None
        for note in req._notes:  # noqa: SLF001 - set by its validator
            typer.echo(f"note: {note}", err=True)
        return req._window  # noqa: SLF001
    df = _read_table(path, only_blank_missing=True)
    minutes = None
    for tcol in ("timestamp", "time"):
        if tcol in df.columns:
            import pandas as pd

            raw = df.pop(tcol)
            if pd.api.types.is_numeric_dtype(raw):  # Unix time (Prometheus, Grafana exports): s, or ms when that big
                unit = "ms" if raw.abs().max() > 1e11 else "s"
                t = pd.to_datetime(raw, unit=unit, errors="coerce", utc=True)  # not nanoseconds: 300 s apart was 300 ns
            else:
                t = pd.to_datetime(raw, errors="coerce", utc=True)  # "...Z" and "+01:00" in one column
            if t.isna().any():
                raise CliError(f"{path}: column {tcol!r} has values that are not times")
            minutes = list((t - t.iloc[0]).dt.total_seconds() / 60.0)
    blank = df.isna()
    if len(df) and blank.to_numpy().any():  # a sample missed (a Grafana export leaves the cell empty): that time
        keep = ~blank.any(axis=1).to_numpy()  # is left out of every series, as with a Prometheus range
        minutes = [m for m, k in zip(minutes or [5.0 * i for i in range(len(df))], keep, strict=True) if k]
        counts = ", ".join(f"{c}: {int(n)}" for c, n in blank.sum().items() if n)
        typer.echo(f"note: left out {int((~keep).sum())} of {len(df)} row(s) with an empty cell ({counts})", err=True)
        df = df[keep]
    try:
        return validate_window({c: list(df[c]) for c in df.columns}, minutes)
    except RiskInputError as exc:
        raise CliError(f"{path}: {exc}") from None


@risk_app.command("predict")
def risk_predict(
    metrics: Annotated[list[str] | None, typer.Argument(help="name=value pairs, e.g. service=api cpu=85 mem=90")
                       ] = None,
    window: Annotated[Path | None, typer.Option(help="A window: CSV (one column per metric, optional "
                                                     "timestamp) or JSON (Prometheus query_range).")] = None,
    chart: Annotated[Path | None, typer.Option(help="Write the chart (PNG) here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assess the failure risk of one service from a snapshot and/or a window of samples."""
    from skills.risk import card_lines, parse_command, pct
    from skills.risk_engine import RiskInputError, get_engine, validate_snapshot

    text = " ".join(metrics or [])
    win = _window_from_file(window) if window else None
    try:
        if win is None:
            service, _, snap = parse_command(text)
        else:
            service, raw = None, {}
            for tok in text.split():
                key, _, value = tok.partition("=")
                if key == "service":
                    service = value
                else:
                    raw[key] = value
            snap = validate_snapshot(raw, min_metrics=0)
    except RiskInputError as exc:
        raise CliError(str(exc)) from None
    a = get_engine(_settings().models_path).assess(snap, win)
    if chart is not None:
        from models.risk_chart import snapshot_chart, window_chart
        from skills.risk_engine import WARN_LEVELS

        png = window_chart(f"{service or 'series'}: recent window", a.panels) if a.panels else snapshot_chart(
            f"{service or 'snapshot'}: {a.band}", a.inputs, WARN_LEVELS, {f.label: f.contribution for f in a.factors})
        chart.write_bytes(png)
    if as_json:
        typer.echo(json.dumps({"service": service, **a.as_dict()}))
        return
    typer.echo(f"{service or 'service'}: {a.band} ({pct(a.probability)} chance of failure within the hour)")
    for line in card_lines(a):
        typer.echo(line)
    for f in a.top_factors:
        typer.echo(f"→ {f.recommendation}")
    if a.missing:
        typer.echo(f"not given (assumed healthy): {', '.join(a.missing)}")
    typer.echo(f"model {a.model_version}")


@eval_app.command("risk")
def eval_risk(
    data: Annotated[Path, typer.Option(help="NAB-format CSV, or a directory of them.")],
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of metrics.")] = False,
    series_col: Annotated[str, typer.Option(help="Series id column.")] = "series",
    time_col: Annotated[str, typer.Option(help="Timestamp column.")] = "timestamp",
    value_col: Annotated[str, typer.Option(help="Value column.")] = "value",
    window_col: Annotated[str, typer.Option(help="0/1 'in anomaly window' column.")] = "in_anomaly_window",
    lead_col: Annotated[str, typer.Option(help="Minutes to the next window start.")] = "minutes_to_next_window_start",
    snapshot_episodes: Annotated[int, typer.Option(min=0, help="Synthetic episodes per fold (0: skip).")] = 2000,
) -> None:
    """Detector on real series (chronological split) and snapshot model on held-out synthetic scenarios."""
    import pandas as pd

    from models.risk_eval import NabColumns, eval_series, eval_snapshot

    files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
    if not files or not all(f.is_file() for f in files):
        raise CliError(f"no CSV files at {data}")
    frames = []
    for f in files:
        df = _read_table(f)
        if series_col not in df.columns:
            continue  # other CSVs in the folder (not series)
        frames.append(df)
    if not frames:
        raise CliError(f"no CSV at {data} has a {series_col!r} column")
    cols = NabColumns(series_col, time_col, value_col, window_col, lead_col)
    start = time.perf_counter()
    try:
        res = eval_series(pd.concat(frames, ignore_index=True), cols)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    res["series_seconds"] = round(time.perf_counter() - start, 1)
    if snapshot_episodes:
        start = time.perf_counter()
        res.update(eval_snapshot(n_train=snapshot_episodes, n_test=max(snapshot_episodes // 2, 200)))
        res["snapshot_seconds"] = round(time.perf_counter() - start, 1)
    if not as_json:
        for k, v in res.items():
            typer.echo(f"{k}: {v}")
        return
    typer.echo(json.dumps(res))
