"""``pytest-carbon report``: re-render one saved report in any format, or merge several."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from carbon_factory import make_report
from pytest_carbon.errors import CarbonError, InputError
from pytest_carbon.report.cli import add_report_parser
from pytest_carbon.report.model import SessionReport, report_from_dict


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="pytest-carbon")
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    status: int = args.handler(args)
    return status


@pytest.fixture
def saved(tmp_path: Path, report: SessionReport) -> Path:
    path = tmp_path / "carbon.json"
    path.write_text(report.to_json(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fmt", "start"),
    [
        ("terminal", "Session: "),
        ("markdown", "## Carbon footprint: py312-pg"),
        ("html", "<!DOCTYPE html>"),
        ("csv", "timestamp,project_name,"),
        ("json", "{"),
    ],
)
def test_every_format(
    saved: Path, capsys: pytest.CaptureFixture[str], fmt: str, start: str
) -> None:
    assert run(str(saved), "--format", fmt) == 0
    assert capsys.readouterr().out.startswith(start)


def test_json_round_trips(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(str(saved), "--format", "json")
    again = report_from_dict(json.loads(capsys.readouterr().out))
    assert again.to_json() == saved.read_text(encoding="utf-8")


def test_baseline_and_regions_in_the_terminal(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.json"
    old.write_text(make_report(scale=0.5).to_json(), encoding="utf-8")
    run(str(saved), "--baseline", str(old), "--compare-regions", "FRA")
    out = capsys.readouterr().out
    assert "What if elsewhere" in out
    assert "France" in out
    assert "Against baseline old.json: session " in out
    run(str(saved), "--compare-regions", "none")
    assert "What if elsewhere" not in capsys.readouterr().out


def test_output_file(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "carbon.html"
    assert run(str(saved), "--format", "html", "-o", str(target)) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_merge(tmp_path: Path, saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = make_report(scale=3.0)
    other.identity.job = "py310"
    other.identity.matrix = {}
    second = tmp_path / "second.json"
    second.write_text(other.to_json(), encoding="utf-8")
    run("--merge", str(saved), str(second), "--format", "markdown")
    out = capsys.readouterr().out
    assert out.startswith("## Carbon footprint of 2 jobs")
    assert "| `py310` | 5 |" in out
    run("--merge", str(saved), str(second))
    out = capsys.readouterr().out
    assert out.startswith("2 jobs: ")
    assert "py310" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--merge", "--format", "html"], "--merge renders terminal or markdown, not html"),
        (["twice", "--format", "csv"], "--format csv renders one report at a time"),
        (["--compare-regions", "XX"], "--compare-regions: unknown region 'XX'"),
    ],
)
def test_usage_errors_name_the_fix(saved: Path, argv: list[str], message: str) -> None:
    with pytest.raises(CarbonError, match=message) as info:
        run(str(saved), *[str(saved) if a == "twice" else a for a in argv])
    assert "Fix: " in str(info.value)


def test_malformed_report_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,', encoding="utf-8")
    with pytest.raises(InputError) as info:
        run(str(bad))
    assert str(info.value).startswith(f"{bad}:1: malformed JSON")
    assert "\n" not in str(info.value)
