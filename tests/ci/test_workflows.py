"""The workflows a fleet repo copies (fleet-config-example/.github/workflows/) keep their
safety properties, call only commands and options the CLI has, and pass actionlint.

Safety properties: pull-request workflows see no secret and never run on
`pull_request_target`; the rollout has a concurrency group of its own that cancels the
running rollout; secrets reach a job only through a step's `env:` and are written to files
under `umask 077`, each chmod 600; actions are pinned by tag.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.cli.progress import JsonReporter
from reconciler.rollout.phases import Outcome

ROOT = Path(__file__).resolve().parents[2]
FLEET_WORKFLOWS = ROOT / "fleet-config-example" / ".github" / "workflows"
OWN_WORKFLOWS = ROOT / ".github" / "workflows"
EXPECTED = {"pr.yml", "rollout.yml", "drift.yml", "dry-run.yml"}

FLAG = None  # an option that takes no value
ANY = "*"  # an option whose value is free (a revision, a number, a path)

# The command interface the workflows are written to (brief P, issue 15): command path ->
# option -> FLAG, ANY, or the set of values the workflows may pass.
INTERFACE: Mapping[tuple[str, ...], Mapping[str, Any]] = {
    ("validate",): {"--format": {"github"}, "--repo": ANY},
    ("diff",): {
        "--base": ANY,
        "--head": ANY,
        "--format": {"markdown", "text", "json"},
        "--exit-code": FLAG,
        "--repo": ANY,
    },
    ("pr", "comment"): {"--pr": ANY, "--body-file": ANY, "--summary": FLAG},
    ("review",): {"--base": ANY, "--head": ANY, "--pr": ANY, "--codeowners": FLAG, "--out": ANY},
    ("drift-issue",): {"--exit-code-from": ANY, "--body-file": ANY, "--error-file": ANY},
    ("apply",): {
        "--yes": FLAG,
        "--dry-run": FLAG,
        "--format": {"json", "text"},
        "--wait-lock": ANY,
        "--repo": ANY,
    },
}

# Helper O's half of issue 15 (built on another branch): until it is merged, a call that
# the CLI here lacks is held to INTERFACE alone; once merged, every call is checked against
# the CLI itself. Each entry: (command path, option or None for the command, value or None).
# Calls the CLI may not have yet (none: every command the workflows call is on main).
PENDING_ELSEWHERE: frozenset[tuple[tuple[str, ...], str | None, str | None]] = frozenset()


def load(path: Path) -> dict[str, Any]:
    """One workflow as plain data (YAML 1.2, so the `on:` key stays a string)."""
    doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path}: not a mapping"
    return doc


def all_workflows() -> list[Path]:
    return sorted(FLEET_WORKFLOWS.glob("*.y*ml")) + sorted(OWN_WORKFLOWS.glob("*.y*ml"))


def fleet(name: str) -> dict[str, Any]:
    return load(FLEET_WORKFLOWS / name)


def triggers(doc: Mapping[str, Any]) -> dict[str, Any]:
    on = doc["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def steps(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


@dataclass(frozen=True)
class Call:
    """One `reconcile ...` command line found in a workflow's `run:` script."""

    where: str
    path: tuple[str, ...]
    options: tuple[tuple[str, str | None], ...]  # (option, value or None)

    def text(self) -> str:
        opts = " ".join(o if v is None else f"{o} {v}" for o, v in self.options)
        return f"reconcile {' '.join(self.path)} {opts}".strip()


def shell_words(script: str) -> list[list[str]]:
    """The script's simple commands, each as its words (pipes, `;`, `&&`, newlines split)."""
    lex = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|<>()\n")
    lex.whitespace = " \t\r"
    commands: list[list[str]] = [[]]
    for token in lex:
        if token and set(token) <= set(";&|<>()\n"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def calls_in(path: Path) -> list[Call]:
    found = []
    for job, step in steps(load(path)):
        for command in shell_words(step.get("run", "")):
            words = command[1:] if command[0] == "exec" else command
            if not words or words[0] != "reconcile":
                continue
            found.append(parse_call(f"{path.name} job {job} step {step.get('name', '?')}", words))
    return found


def parse_call(where: str, words: list[str]) -> Call:
    args = words[1:]
    path: tuple[str, ...] = ()
    for key in sorted(INTERFACE, key=len, reverse=True):
        if tuple(args[: len(key)]) == key:
            path = key
            break
    assert path, f"{where}: `reconcile {' '.join(args)}` is no command of the interface"
    rest = args[len(path) :]
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        assert word.startswith("--"), f"{where}: unexpected argument {word!r}"
        name, eq, inline = word.partition("=")
        spec = INTERFACE[path].get(name, "unknown")
        assert spec != "unknown", f"{where}: reconcile {' '.join(path)} has no option {name}"
        if spec is FLAG:
            options.append((name, None))
            i += 1
        elif eq:
            options.append((name, inline))
            i += 1
        else:
            assert i + 1 < len(rest), f"{where}: {name} needs a value"
            options.append((name, rest[i + 1]))
            i += 2
    return Call(where, path, tuple(options))


def fleet_calls() -> list[Call]:
    return [c for p in sorted(FLEET_WORKFLOWS.glob("*.y*ml")) for c in calls_in(p)]


# -- the files -------------------------------------------------------------------------


def test_the_four_workflows_replace_reconcile_yml() -> None:
    names = {p.name for p in FLEET_WORKFLOWS.glob("*.y*ml")}
    assert names == EXPECTED
    assert (OWN_WORKFLOWS / "ci.yml").is_file()
    ci = load(OWN_WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(triggers(ci))
    assert any("bash .ci/run" in step.get("run", "") for _, step in steps(ci))


def test_actions_are_pinned_by_tag() -> None:
    for path in all_workflows():
        for job, step in steps(load(path)):
            uses = step.get("uses")
            if uses is not None:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", uses), f"{path.name} {job}: {uses}"


# -- pull requests ---------------------------------------------------------------------


def test_pull_request_workflows_see_no_secret_and_never_pull_request_target() -> None:
    for path in all_workflows():
        assert "pull_request_target" not in triggers(load(path)), path.name
        assert "pull_request_target" not in str(load(path)), path.name  # comments aside
    pr_text = (FLEET_WORKFLOWS / "pr.yml").read_text(encoding="utf-8")
    assert not re.search(r"\bsecrets\s*[.\[]", pr_text), "pr.yml reads a secret"
    pr = fleet("pr.yml")
    assert set(triggers(pr)) == {"pull_request", "pull_request_review"}
    # every workflow a pull request triggers is pr.yml
    for path in FLEET_WORKFLOWS.glob("*.y*ml"):
        if {"pull_request", "pull_request_review"} & set(triggers(load(path))):
            assert path.name == "pr.yml", path.name


def test_pull_request_permissions_are_minimal() -> None:
    pr = fleet("pr.yml")
    assert pr["permissions"] == {"contents": "read", "pull-requests": "write"}
    for job_name, job in pr["jobs"].items():
        assert "permissions" not in job, f"pr.yml job {job_name} widens its permissions"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, job_name


def test_pull_requests_validate_diff_comment_and_review() -> None:
    texts = [c.text() for c in calls_in(FLEET_WORKFLOWS / "pr.yml")]
    assert "reconcile validate --format github" in texts
    diff = next(c for c in calls_in(FLEET_WORKFLOWS / "pr.yml") if c.path == ("diff",))
    assert dict(diff.options) == {
        "--base": "$BASE_SHA",
        "--head": "$HEAD_SHA",
        "--format": "markdown",
    }
    assert "reconcile pr comment --pr $PR_NUMBER --body-file fleet-diff.md --summary" in texts
    assert "reconcile review --base $BASE_SHA --head $HEAD_SHA --pr $PR_NUMBER" in texts
    env = fleet("pr.yml")["env"]
    assert env["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert env["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"


def test_pull_request_checks_are_out_of_the_rollout_group() -> None:
    group = fleet("pr.yml")["concurrency"]["group"]
    assert "github.event.pull_request.number" in group and "github.event_name" in group
    assert group != fleet("rollout.yml")["concurrency"]["group"]


# -- the rollout -----------------------------------------------------------------------


def test_rollout_has_a_cancelling_concurrency_group_of_its_own() -> None:
    rollout = fleet("rollout.yml")
    assert set(triggers(rollout)) == {"push"}
    assert triggers(rollout)["push"]["branches"] == ["main"]
    conc = rollout["concurrency"]
    assert conc["cancel-in-progress"] is True
    for path in all_workflows():
        if path.name == "rollout.yml":
            continue
        doc = load(path)
        groups = [doc.get("concurrency", {}).get("group")]
        groups += [j.get("concurrency", {}).get("group") for j in doc["jobs"].values()]
        assert conc["group"] not in groups, f"{path.name} shares the rollout's group"


def test_rollout_applies_in_json_fails_on_3_and_4_and_keeps_the_incident() -> None:
    rollout = fleet("rollout.yml")
    [apply] = [c for c in calls_in(FLEET_WORKFLOWS / "rollout.yml") if c.path == ("apply",)]
    opts = dict(apply.options)
    assert opts["--format"] == "json" and "--yes" in opts and "--dry-run" not in opts
    assert float(opts["--wait-lock"]) > 0
    named = {s.get("id"): s for _, s in steps(rollout)}
    # exec: the runner's cancel signal reaches reconcile itself (its rollback path), and the
    # step's exit code is reconcile's: any non-zero (3 rolled back, 4 rollback failed) fails
    run = named["apply"]["run"]
    assert re.search(r"^\s*exec reconcile apply", run, re.M), run
    assert "continue-on-error" not in named["apply"]
    upload = next(s for _, s in steps(rollout) if "upload-artifact" in str(s.get("uses")))
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["if"] == "always()"
    summary = next(s for _, s in steps(rollout) if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()"
    assert "incident.written" in summary["run"] and "rollout.finished" in summary["run"]


def test_secrets_are_written_0600_under_umask_077() -> None:
    """A secret enters only through a step's env, in a step that writes it to a file under
    umask 077 and chmods each file it wrote to 600, and a later step removes them."""
    secret_ref = re.compile(r"\$\{\{\s*secrets\.")
    with_secrets = 0
    for path in FLEET_WORKFLOWS.glob("*.y*ml"):
        doc = load(path)
        assert not secret_ref.search(str(doc.get("env", ""))), f"{path.name}: workflow env"
        for job_name, job in doc["jobs"].items():
            assert not secret_ref.search(str(job.get("env", ""))), f"{path.name} {job_name}"
            written: set[str] = set()
            for step in job["steps"]:
                assert not secret_ref.search(str(step.get("run", ""))), f"{path.name}: in run"
                assert not secret_ref.search(str(step.get("with", ""))), f"{path.name}: in with"
                if not secret_ref.search(str(step.get("env", ""))):
                    continue
                with_secrets += 1
                written |= check_credentials_step(path.name, step["run"])
            if written:
                removal = [s for s in job["steps"] if s.get("if") == "always()"
                           and str(s.get("run", "")).startswith("rm -f")]  # fmt: skip
                assert removal, f"{path.name} {job_name}: the credentials are never removed"
                assert written <= set(removal[-1]["run"].split()), path.name
    assert with_secrets == 3  # rollout, drift, dry-run


def check_credentials_step(name: str, script: str) -> set[str]:
    commands = shell_words(script)
    assert commands[0] == ["umask", "077"], f"{name}: the first command is not umask 077"
    written: set[str] = set()
    chmodded: set[str] = set()
    lex = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|<>()\n")
    lex.whitespace = " \t\r"
    tokens = list(lex)
    for i, token in enumerate(tokens):
        if token in (">", ">>"):
            written.add(tokens[i + 1])
    for words in commands:
        if words[:2] == ["chmod", "600"]:
            chmodded |= set(words[2:])
    assert written, f"{name}: a step with secrets that writes no file"
    assert written <= chmodded, f"{name}: not chmod 600: {written - chmodded}"
    return written


# -- drift and dry run -----------------------------------------------------------------


def test_drift_check_is_scheduled_and_drives_one_issue() -> None:
    drift = fleet("drift.yml")
    assert "schedule" in triggers(drift)
    assert drift["permissions"] == {"contents": "read", "issues": "write"}
    texts = [c.text() for c in calls_in(FLEET_WORKFLOWS / "drift.yml")]
    assert "reconcile diff --exit-code --format markdown" in texts
    assert (
        "reconcile drift-issue --exit-code-from $DIFF_EXIT --body-file drift.md"
        " --error-file drift.err" in texts
    )
    [issue_step] = [s for _, s in steps(drift) if "drift-issue" in s.get("run", "")]
    assert issue_step["env"]["DIFF_EXIT"] == "${{ steps.diff.outputs.code }}"


def test_dry_run_is_by_hand_and_touches_nothing() -> None:
    dry = fleet("dry-run.yml")
    assert set(triggers(dry)) == {"workflow_dispatch"}
    [call] = calls_in(FLEET_WORKFLOWS / "dry-run.yml")
    assert call.path == ("apply",) and dict(call.options) == {"--dry-run": None}


# -- the CLI ---------------------------------------------------------------------------


OPTION_LINE = re.compile(r"^\s{2}(--[\w-]+)(?:,\s*-\w)?(?:\s+<([^>]+)>)?(?:\s|$)")


def cli_options(path: tuple[str, ...]) -> dict[str, frozenset[str] | None] | None:
    """What `reconcile PATH --help` lists: option -> its choices (`<a|b|c>`), else None;
    None when the CLI has no such command."""
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "240"})
    if done.exit_code != 0:
        assert "No such command" in done.output, done.output
        return None
    options: dict[str, frozenset[str] | None] = {}
    for line in done.output.splitlines():
        m = OPTION_LINE.match(line)
        if m:
            metavar = m.group(2)
            choices = frozenset(metavar.split("|")) if metavar and "|" in metavar else None
            options[m.group(1)] = choices
    assert "--help" in options, done.output
    return options


def test_every_call_in_the_workflows_is_a_command_and_options_the_cli_has() -> None:
    """Checked against `reconcile CMD --help` itself; a piece of helper O's half that is
    not on this tree yet is held to INTERFACE (parse_call) instead, and checked against the
    CLI as soon as the tree has it."""
    calls = fleet_calls()
    assert {c.path for c in calls} == set(INTERFACE), "a command of the interface is unused"
    helps = {path: cli_options(path) for path in {c.path for c in calls}}
    assert helps[("apply",)] is not None and "--wait-lock" in helps[("apply",)]
    for call in calls:
        options = helps[call.path]
        if options is None:
            assert (call.path, None, None) in PENDING_ELSEWHERE, f"{call.where}: {call.text()}"
            continue
        for option, value in call.options:
            assert option in options, f"{call.where}: `{call.text()}`: no option {option}"
            choices = options[option]
            if choices is not None and value is not None and value not in choices:
                key = (call.path, option, value)
                assert key in PENDING_ELSEWHERE, f"{call.where}: {option} {value} not in {choices}"


# -- actionlint ------------------------------------------------------------------------

BAD_WORKFLOW = """\
on:
  pull_request_review:
    paths: [fleet.yaml]
permissions:
  pull-request: write
jobs:
  a:
    runs-on: ubuntu-latest
    env:
      X: ${{ runner.temp }}
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


@pytest.mark.timeout(300)
def test_actionlint_passes_the_rollout_and_catches_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW, encoding="utf-8")
    # .ci/run lints every workflow (scripts/lint-workflows, first); here one real file beside
    # the bad one shows the linter runs, finds what it should, and nothing in a good file
    files = [str(FLEET_WORKFLOWS / "rollout.yml")]
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lint-workflows"), str(bad), *files],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    problems = done.stdout.splitlines()
    assert all(line.startswith(f"{bad}:") for line in problems), done.stdout
    expected = ["paths", "pull-request", '"runner" is not allowed', "potentially untrusted"]
    for words in expected:
        assert any(words in line for line in problems), f"actionlint missed {words}"
    assert f"{len(files) + 1} file(s), {len(problems)} problem(s)" in done.stderr


# -- the rollout summary step, run ------------------------------------------------------


def step_named(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    [step] = [s for _, s in steps(doc) if s.get("name") == name]
    return step


def run_summary_step(home: Path, runner: Path, outcome: str) -> str:
    """rollout.yml's "rollout summary" step, run by bash as GitHub runs it; its summary."""
    if shutil.which("jq") is None:
        pytest.fail("jq is not installed (GitHub's runners have it): apt-get install jq")
    script = step_named(fleet("rollout.yml"), "rollout summary")["run"]
    script = script.replace("${{ steps.apply.outcome }}", outcome)
    assert "${{" not in script
    summary = home / "summary.md"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "RUNNER_TEMP": str(runner),
        "GITHUB_SHA": "0123456789abcdef0123",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return summary.read_text(encoding="utf-8")


def test_rollout_summary_step_reports_the_outcome_and_collects_the_incident(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary step's shell and jq, run on what `apply --format json` prints: the plan
    (a JSON document over several lines), then one event a line (the CLI's JsonReporter)."""
    state = tmp_path / "state" / "incidents"
    state.mkdir(parents=True)
    (state / "r-1.md").write_text("# Incident r-1\n\ncanary gate failed\n", encoding="utf-8")
    (state / "r-1.json").write_text('{"incident_version": 1}\n', encoding="utf-8")
    print(json.dumps({"waves": [{"agents": ["a-1"]}], "revision": "abc"}, indent=2))
    events = JsonReporter()
    events.note("wave.started", {"wave": 1, "agents": ["a-1"]})
    events.note("box.applied", {"agent": "a-1", "wave": 1})
    events.note("rollback.started", {"trigger": "gate cost failed"})
    events.note("box.restored", {"agent": "a-1"})
    events.note("incident.written", {"markdown": str(state / "r-1.md"),
                                     "json": str(state / "r-1.json")})  # fmt: skip
    end = Outcome.ROLLED_BACK
    events.note("rollout.finished", {"outcome": str(end), "exit_code": end.exit_code})
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "apply.jsonl").write_text(capsys.readouterr().out, encoding="utf-8")

    text = run_summary_step(tmp_path, runner, "failure")
    assert "## Fleet rollout of 0123456789ab" in text
    assert "Step outcome: failure" in text
    assert "Outcome: **rolled-back** (exit 3)" in text
    assert "| box.restored | 1 |" in text and "| rollout.finished | 1 |" in text
    assert "# Incident r-1" in text and "canary gate failed" in text
    kept = runner / "incident"
    assert sorted(p.name for p in kept.iterdir()) == ["r-1.json", "r-1.md"]
    upload = step_named(fleet("rollout.yml"), "incident report")
    assert upload["with"]["path"] == "${{ runner.temp }}/incident/"


def test_rollout_summary_step_with_no_output_at_all(tmp_path: Path) -> None:
    """apply killed before it printed anything: the summary still says what it can."""
    text = run_summary_step(tmp_path, tmp_path, "cancelled")
    assert "Step outcome: cancelled" in text
    assert "Outcome: **" not in text
    assert list((tmp_path / "incident").iterdir()) == []
