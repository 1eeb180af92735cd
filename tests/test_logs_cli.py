"""``warroom logs classify`` / ``train logs`` / ``eval logs`` on bad and good input files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli_logs import iter_log_lines


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WARROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    from bot.cli import CliError

    try:
        res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    except CliError as exc:
        return 1, str(exc)
    return res.exit_code, res.stdout


def _line_rows(path: Path) -> tuple[list[list[str]], str]:
    """`warroom logs classify PATH --lines --no-remember`: its rows (line, severity, category, template id), and its
    whole output for messages."""
    _code, out = _run("logs", "classify", str(path), "--lines", "--no-remember")
    return [r.split("\t") for r in out.splitlines() if r[:1].isdigit() and "\t" in r], out


def test_classify_streams_bad_bytes_and_a_huge_line(env: Path) -> None:
    f = env / "mixed.log"
    f.write_bytes(b"ERROR db-1 connection refused\n" + b"INFO ok \xff\xfe bytes\n" + b"x" * (10 * 2**20) + b"\n"
                  + b"WARN retrying in 5s\n")
    code, out = _run("logs", "classify", str(f), "--json")
    assert code == 0, out
    rep = json.loads(out.strip().splitlines()[-1])
    assert rep["n_lines"] == 4
    assert any("not UTF-8" in n for n in rep["notes"]) and any("were cut" in n for n in rep["notes"])
    rows, out = _line_rows(f)
    assert [r[1] for r in rows][:1] == ["ERROR"] and len(rows) == 4


def test_terminal_colour_codes_are_read_through(env: Path) -> None:
    # "\x1b[31mFATAL\x1b[0m disk full" was a WARNING: the escape codes hid the level word from the model.
    f = env / "colour.log"
    f.write_bytes(b"\x1b[31mFATAL\x1b[0m disk full on /dev/sda1\n\x1b[1;33mWARN\x1b[0m retrying in 5s\n"
                  b"\x1b[0m\x1b[K\n\x1b[32mINFO\x1b[0m started worker 3\n")  # a line of codes alone is no line
    rows, out = _line_rows(f)
    assert [r[1] for r in rows] == ["FATAL", "WARNING", "INFO"], out
    assert "\x1b" not in out and "[31m" not in out


def test_classify_refuses_binary_empty_and_missing_files(env: Path) -> None:
    binary = env / "core.bin"
    binary.write_bytes(b"\x7fELF\x00\x00" * 1000)
    assert _run("logs", "classify", str(binary)) == (1, f"{binary}: this looks like a binary file "
                                                       "(it contains NUL bytes), not a text log")
    empty = env / "empty.log"
    empty.write_bytes(b"\n\n")
    code, msg = _run("logs", "classify", str(empty))
    assert code == 1 and "no log lines" in msg
    code, msg = _run("logs", "classify", str(env / "nope.log"))
    assert code == 1 and "not a readable file" in msg


def test_iter_log_lines_never_holds_an_overlong_line() -> None:
    notes: list[str] = []
    got = list(iter_log_lines(io.BytesIO(b"a" * 100_000 + b"\nnext line\n"), notes, max_line_bytes=1000))
    assert got == ["a" * 1000, "next line"] and notes


def test_train_logs_with_user_data_and_bad_data(env: Path) -> None:
    good = env / "mine.csv"
    with good.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "severity", "category"])
        w.writerow(["payment gateway returned 502", "ERROR", "dependency"])
        w.writerow(["cron job done", "INFO", "normal"])
    code, out = _run("train", "logs", "--data", str(good))
    assert code == 0, out
    saved = json.loads(out.strip().splitlines()[-1])
    record = json.loads(Path(saved["saved"]).read_text())
    assert record["n_train"] >= 152 and str(good) in record["source"]
    excel = env / "excel.csv"  # Excel's "CSV UTF-8" starts with a byte-order mark: "no rows with 'text'" before
    excel.write_bytes(b"\xef\xbb\xbf" + good.read_bytes())
    code, out = _run("train", "logs", "--data", str(excel), "--no-bundled")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["n_train"] == 2
    tabs = env / "mine.tsv"
    tabs.write_text("text\tseverity\tcategory\npayment gateway returned 502, retrying\tERROR\tdependency\n"
                    "cron job done\tINFO\tnormal\n")
    code, out = _run("train", "logs", "--data", str(tabs), "--no-bundled")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["n_train"] == 2
    bad = env / "bad.csv"
    bad.write_text("text,severity\nhello,LOUD\n")
    code, msg = _run("train", "logs", "--data", str(bad))
    assert code == 1 and "unknown severity" in msg


def test_eval_logs_json_contract_on_a_small_loghub_like_dir(env: Path) -> None:
    data = env / "mini"
    data.mkdir()
    rows = []
    for i in range(40):
        rows.append(("HDFS", f"Receiving block blk_{i} src /10.0.0.{i}", "HDFS:E1", "INFO"))
        rows.append(("HDFS", f"Got exception while serving blk_{i} to /10.0.0.{i}", "HDFS:E2", "WARNING"))
        rows.append(("Hadoop", f"Task attempt_{i} failed with error code {i}", "Hadoop:E3", "ERROR"))
        rows.append(("Hadoop", f"Progress of task attempt_{i} is {i}%", "Hadoop:E4", "INFO"))
        rows.append(("BGL", f"kernel panic on node R{i}", "BGL:E5", "FATAL"))
    with (data / "loghub_2k_unified.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["system", "content", "event_id", "level_norm"])
        w.writerows(rows)
    with (data / "HDFS_2k.log_structured.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Content", "EventId"])
        w.writerows([(r[1], r[2]) for r in rows if r[0] == "HDFS"])
    code, out = _run("eval", "logs", "--data", str(data), "--json", "--splits", "2", "--alert-splits", "2")
    assert code == 0, out
    res = json.loads(out.strip().splitlines()[-1])
    for key in ("severity_accuracy", "severity_macro_f1", "bgl_alert_f1", "grouping_accuracy_mean",
                "grouping_accuracy", "lines_per_second"):
        assert key in res and f"baseline_{key}" in res
    assert res["bgl_alert_f1"] is None and res["grouping_accuracy"]["HDFS"] == 1.0
    code, msg = _run("eval", "logs", "--data", str(env / "missing"), "--json")
    assert code == 1 and "not a directory" in msg


def test_classify_reads_rotated_compressed_logs(env: Path) -> None:
    """Rotated logs come compressed (``syslog.2.gz``); they are read as their lines, told apart by their first
    bytes (not the name, so stdin works too). A gzip cut short (copied while being written) keeps what came
    before, with a note; zstd gets a clear way round; a bz2 that is not one is an error, not a traceback."""
    import bz2
    import gzip
    import lzma

    text = b"".join(b"ERROR db-%d connection refused\nINFO worker %d started\n" % (i, i) for i in range(500))
    for name, packed in (("syslog.2.gz", gzip.compress(text)), ("app.log.bz2", bz2.compress(text)),
                         ("app.log.xz", lzma.compress(text))):
        (env / name).write_bytes(packed)
        code, out = _run("logs", "classify", str(env / name), "--json", "--no-remember")
        assert code == 0, out
        rep = json.loads(out.strip().splitlines()[-1])
        assert rep["n_lines"] == 1000 and any(n.startswith("decompressed") for n in rep["notes"]), rep
    packed = gzip.compress(text)
    (env / "cut.log.gz").write_bytes(packed[: len(packed) // 2])
    code, out = _run("logs", "classify", str(env / "cut.log.gz"), "--json", "--no-remember")
    assert code == 0, out
    rep = json.loads(out.strip().splitlines()[-1])
    assert 0 < rep["n_lines"] < 1000 and any("ends early" in n for n in rep["notes"]), rep
    (env / "new.log.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
    code, out = _run("logs", "classify", str(env / "new.log.zst"))
    assert code == 1 and "zstd -dc" in out
    (env / "fake.bz2").write_bytes(b"BZh9" + b"not really bzip2 at all\n" * 10)
    code, out = _run("logs", "classify", str(env / "fake.bz2"), "--json", "--no-remember")
    assert code == 1 and "damaged" in out, out


def test_windows_utf16_logs_and_a_utf8_byte_order_mark_are_read_as_text(env: Path) -> None:
    """Windows PowerShell 5 writes `Get-Content app.log > out.log` as UTF-16 (little-endian, with a byte-order
    mark): it was refused as "a binary file (it contains NUL bytes)". A UTF-8 byte-order mark stuck to the first
    line (its template began with U+FEFF)."""
    import gzip

    text = "".join(f"2026-12-03 10:00:{i:02d} ERROR db-{i} connection refused\r\n"
                   f"2026-12-03 10:00:{i:02d} INFO worker {i} started\r\n" for i in range(40))
    for name, data in (("ps.log", b"\xff\xfe" + text.encode("utf-16-le")), ("nobom-le.log", text.encode("utf-16-le")),
                       ("nobom-be.log", text.encode("utf-16-be")),
                       ("ps.log.gz", gzip.compress(b"\xff\xfe" + text.encode("utf-16-le")))):
        (env / name).write_bytes(data)
        code, out = _run("logs", "classify", str(env / name), "--json", "--no-remember")
        assert code == 0, (name, out)
        rep = json.loads(out.strip().splitlines()[-1])
        assert rep["n_lines"] == 80 and any("UTF-16" in n for n in rep["notes"]), (name, rep)
        assert not any("not UTF-8" in n for n in rep["notes"]), (name, rep)
        assert "connection refused" in out and "\\u0000" not in out and "\\ufffd" not in out, (name, out[-600:])
        rows, out = _line_rows(env / name)
        assert [r[1] for r in rows[:2]] == ["ERROR", "INFO"] and len(rows) == 80, (name, out[:300])
    (env / "bom8.log").write_bytes(b"\xef\xbb\xbf" + text.encode())
    code, out = _run("logs", "classify", str(env / "bom8.log"), "--json", "--no-remember")
    rep = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and len(rep["templates"]) == 2 and "\\ufeff" not in out, out[-600:]
    (env / "real.bin").write_bytes(bytes(range(256)) * 40)  # still a binary
    code, out = _run("logs", "classify", str(env / "real.bin"))
    assert code == 1 and "binary" in out, out


def test_kubernetes_klog_logfmt_and_access_lines_keep_their_level_and_message(env: Path) -> None:
    """Formats on-call engineers paste most, each read as one template per message and level (access logs: per
    status class):
    - klog (kubelet, controllers): "W1203 10:00:12.123456 1234 reflector.go:324] ..." - the masker made the header
      one <*>, so a warning and an info line with the same message were one template, taken as INFO;
    - logfmt (Prometheus, Grafana, Loki): `level=error msg="..."` - both values were masked, so every line with the
      same keys was one template with the first line's level, whatever its message;
    - access logs (nginx, Apache): the status was masked like any number, so a 502 and a 200 were one INFO template."""
    f = env / "mixed-formats.log"
    f.write_text(
        "W1203 10:00:12.123456    1234 reflector.go:324] watch of *v1.Pod ended with: too old resource version\n"
        "I1203 10:00:13.123456    1234 reflector.go:324] watch of *v1.Pod ended with: too old resource version\n"
        "E1203 10:00:14.123456    1234 controller.go:114] syncing pod web-1 done\n"
        'ts=2026-12-03T10:00:07Z caller=main.go:12 level=info component=tsdb msg="compaction done" blocks=3\n'
        'ts=2026-12-03T10:00:08Z caller=main.go:13 level=error component=tsdb msg="compaction failed" err="no space"\n'
        'ts=2026-12-03T10:00:09Z caller=main.go:14 level=warn component=tsdb msg="head GC slow" took=3.1s\n'
        'ts=2026-12-03T10:00:10Z caller=main.go:13 level=error component=tsdb msg="compaction failed" err="quota"\n'
        # journald's prefix before the klog header (journalctl -u kubelet)
        'Dec 03 10:00:01 node-7 kubelet[1234]: E1203 10:00:01.123456    1234 kubelet.go:2412] "Error syncing pod"\n'
        'Dec 03 10:00:02 node-7 kubelet[1234]: W1203 10:00:02.123456    1234 kubelet.go:2412] "Error syncing pod"\n'
        # access logs: a 502 and a 200 were one INFO template
        '10.0.0.1 - - [03/Dec/2026:10:00:01 +0000] "GET /api/orders HTTP/1.1" 502 157 "-" "curl/8.5.0"\n'
        '10.0.0.2 - - [03/Dec/2026:10:00:02 +0000] "GET /api/orders HTTP/1.1" 200 5120 "-" "curl/8.5.0"\n'
        '10.0.0.3 - - [03/Dec/2026:10:00:03 +0000] "POST /login HTTP/1.1" 401 12 "-" "Mozilla/5.0"\n'
        '10.0.0.4 - - [03/Dec/2026:10:00:04 +0000] "GET /api/cart HTTP/1.1" 504 0 "-" "Mozilla/5.0"\n')
    rows, out = _line_rows(f)
    assert [r[1] for r in rows] == ["WARNING", "INFO", "ERROR", "INFO", "ERROR", "WARNING", "ERROR", "ERROR",
                                    "WARNING", "ERROR", "INFO", "WARNING", "ERROR"], out
    assert len({r[3] for r in rows}) == 11 and rows[4][3] == rows[6][3] and rows[9][3] == rows[12][3], out
    code, out = _run("logs", "classify", str(f), "--json", "--no-remember")
    templates = {t["template"] for t in json.loads(out.strip().splitlines()[-1])["templates"]}
    assert "ts <*> caller <*> ERROR component <*> compaction failed err <*>" in templates, templates
    assert "WARNING watch of <*> ended with too old resource version" in templates, templates


def test_event_viewer_export_and_syslog_priorities_are_classified_by_their_level(env: Path) -> None:
    """Windows Event Viewer's CSV ("Warning,12/3/2026 ...") was read as ERROR and "Error,..." as FATAL; a syslog
    priority states the level too (<12> is user.warning)."""
    f = env / "events.csv"
    f.write_text(
        "Error,12/3/2026 10:00:01 AM,Service Control Manager,7031,None,The Print Spooler service terminated.\n"
        "Warning,12/3/2026 10:00:02 AM,Microsoft-Windows-Time-Service,36,None,The time service is not in sync.\n"
        "Information,12/3/2026 10:00:03 AM,Service Control Manager,7036,None,The Windows Update service runs.\n"
        "<12>Dec  3 10:00:07 web-1 sshd[99]: Accepted publickey for deploy from 10.0.0.5 port 50122\n")
    rows, out = _line_rows(f)
    assert [r[1] for r in rows] == ["ERROR", "WARNING", "INFO", "WARNING"], out


def test_uploaded_archive_is_capped_when_it_expands() -> None:
    import gzip

    from skills.log_engine import NotLogs, decompress_bounded

    bomb = gzip.compress(b"A" * (20 * 2**20))  # 20 KB that expand to 20 MB
    with pytest.raises(NotLogs, match="expands to more than 1 MB"):
        decompress_bounded(bomb, 2**20)
    with pytest.raises(NotLogs, match="damaged"):
        decompress_bounded(b"\x1f\x8b" + b"\x00" * 40, 2**20)
    data, notes = decompress_bounded(b"plain text\n", 2**20)
    assert data == b"plain text\n" and notes == []
