"""Reports: diffs (and later plans, status, incidents) rendered as text, markdown or JSON.

Pure: data in, a string out. Nothing here reads files, talks to boxes or prints.
"""

from reconciler.report.diff_json import DiffReport, diff_report, render_json
from reconciler.report.diff_markdown import DEFAULT_BUDGET, GITHUB_LIMIT, render_markdown
from reconciler.report.diff_text import render_text

__all__ = [
    "DEFAULT_BUDGET",
    "GITHUB_LIMIT",
    "DiffReport",
    "diff_report",
    "render_json",
    "render_markdown",
    "render_text",
]
