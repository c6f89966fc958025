"""`status --watch` output per refresh, in-process (cli/status.Watch): a live table redrawn
on a terminal, one change line when piped, one JSON document per line with --format json."""

from __future__ import annotations

import io
import json
import sys

import pytest

from reconciler.cli.common import Format
from reconciler.cli.status import Watch
from reconciler.report.status import StatusReport
from reconciler.status import Color

from .test_status_report import agent, report


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def refreshes() -> list[StatusReport]:
    return [report(agent("us-east-fast-001")), report(agent("us-east-fast-001", Color.RED))]


def run(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, fmt: Format) -> str:
    monkeypatch.setattr(sys, "stdout", stream)
    view = Watch(format=fmt, all_agents=True, wide=False)
    try:
        for r in refreshes():
            view.emit(r)
    finally:
        view.stop()
    assert view.code == 1  # the last refresh's exit code
    return stream.getvalue()


def test_a_terminal_gets_a_live_table_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = run(monkeypatch, Tty(), Format.text)
    assert out.count("us-east-fast-001") >= 2 and "\x1b[" in out  # redrawn in place
    assert "1 red" in out


def test_piped_one_change_line_per_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = run(monkeypatch, io.StringIO(), Format.text).splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("; us-east-fast-001 green->red")


def test_json_one_document_per_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = run(monkeypatch, io.StringIO(), Format.json).splitlines()
    docs = [StatusReport.model_validate(json.loads(line)) for line in lines]
    assert [d.worst for d in docs] == [Color.GREEN, Color.RED]
