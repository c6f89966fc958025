"""GitHub workflow commands: `::error file=…,line=…,col=…,title=…::message` lines.

GitHub reads a line of a job's output that starts with `::error ` as an annotation on
the named file and line of the pull request. Its escaping rules (the runner's
`ActionCommand` unescaping): in the message `%`, CR and LF become `%25`, `%0D`, `%0A`;
in a property value `:` and `,` become `%3A` and `%2C` as well. Pure: values in, lines out.
"""

from __future__ import annotations


def escape_data(text: str) -> str:
    """The message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (file, title) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_line(file: str, line: int, column: int, title: str, message: str) -> str:
    """One `::error` annotation on `file` at `line`:`column`."""
    props = ",".join(
        (
            f"file={escape_property(file)}",
            f"line={max(line, 1)}",
            f"col={max(column, 1)}",
            f"title={escape_property(title)}",
        )
    )
    return f"::error {props}::{escape_data(message)}"


def summary_line(errors: int, files: int) -> str:
    """The last line: how many errors in how many files (plain text, not an annotation)."""
    if not errors:
        return "reconcile validate: no errors"
    return (
        f"reconcile validate: {errors} error{'s' if errors != 1 else ''} in "
        f"{files} file{'s' if files != 1 else ''}"
    )
