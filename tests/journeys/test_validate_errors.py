"""Journey 8: an operator's edit breaks five rules in four files; `reconcile validate` says all.

The repo is the example config (what `demo up` copies into DIR/fleet, real fleet.yaml),
copied into a tmp git repo and edited as a person would: a typo'd key in fleet.yaml
(`soak_secs`), a second unknown key in fleet.yaml's gates, a wrong type in a tier's
payload, an unknown tier in a shard, an undeclared secret in another tier. `validate`
must print every one of them as `file:line:col: error[rule]: ...` (and list them in
`--format json`), exit 1, and never show a traceback: an unknown key in fleet.yaml must
not hide the errors of the other files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.testing.journeys import explained, run

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).resolve().parents[2] / "fleet-config-example"


def _edit(repo, path, old, new):
    """Replace `old` by `new` once; (line, column) of `new`'s first character, 1-based."""
    file = repo / path
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: {old!r} occurs {text.count(old)} times"
    at = text.index(old)
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return line, column


@pytest.fixture
def broken(tmp_path):
    """The example repo with five errors; [(file, line, col, rule, word in the message)]."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    errors = []
    line, col = _edit(repo, "fleet.yaml", "  soak_s: 600 ", "  soak_secs: 5\n  soak_s: 600 ")
    errors.append(("fleet.yaml", line, col + 2, "schema.unknown-key", "soak_secs"))
    line, col = _edit(repo, "fleet.yaml", "    max_ratio: 1.5\n    max: 0.05\n",
                      "    max_ratio: 1.5\n    maximum: 0.05\n")  # fmt: skip
    errors.append(("fleet.yaml", line + 1, col + 4, "schema.unknown-key", "maximum"))
    line, col = _edit(repo, "agents/tier-fast.yaml", "  max_tokens: 512", "  max_tokens: lots")
    errors.append(("agents/tier-fast.yaml", line, col + 2, "payload.schema", "max_tokens"))
    line, col = _edit(
        repo, "shards/us-east.yaml", "  - name: us-east-fast-001\n    tier: fast\n",
        "  - name: us-east-fast-001\n    tier: fastest\n",
    )  # fmt: skip
    errors.append(("shards/us-east.yaml", line + 1, col + 4, "tier.unknown", "fastest"))
    line, col = _edit(
        repo, "agents/tier-batch.yaml", "  max_tokens: 2048\n",
        "  max_tokens: 2048\n  api_key: {secret: openai_key}\n",
    )  # fmt: skip
    errors.append(("agents/tier-batch.yaml", line + 1, col + 2, "secret.undeclared", "openai_key"))
    return repo, errors


def test_validate_reports_every_error_of_every_file(broken):
    """Five errors, four files: each as file:line:col and rule, in text and JSON; exit 1."""
    repo, errors = broken
    text = run("validate", "--repo", ".", cwd=repo)
    with explained(text.describe()):
        text.expect(1).refuse(r"Traceback")
        for file, line, col, rule, word in errors:
            want = f"{file}:{line}:{col}: error[{rule}]"
            hits = [ln for ln in text.output.splitlines() if ln.startswith(want)]
            assert hits, f"no `{want}: ...` line"
            assert word in hits[0], f"{want}: the message does not name {word!r}"
        assert "did you mean 'soak_s'" in text.output
        assert f"{len(errors)} error(s)" in text.output
    js = run("validate", "--repo", ".", "--format", "json", cwd=repo)
    with explained(js.describe()):
        js.expect(1).refuse(r"Traceback")
        doc = json.loads(js.stdout)
        assert doc["valid"] is False
        got = {(e["file"], e["line"], e["column"], e["rule"]) for e in doc["errors"]}
        want = {e[:4] for e in errors}
        assert want <= got, f"missing: {sorted(want - got)}"
