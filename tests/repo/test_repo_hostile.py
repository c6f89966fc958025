"""The repo edge refuses what would make a pull request reach beyond the fleet repo.

Symlinks and files that are not regular files are refused, in the work tree and in
git revisions alike, naming the file and never reading what a link points to; the
number of files and their total size are capped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.config.errors import ConfigErrors
from reconciler.repo import files as repo_files
from reconciler.repo import read_revision, read_work_tree

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "cases" / "config" / "tiny"
MARKER = "TOP-SECRET-OUTSIDE-THE-REPO"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file beyond the repo that a hostile pull request would like CI to print."""
    secret = tmp_path / "outside" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text(f"description: {MARKER}\n")
    return secret


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(TINY, dest)
    return dest


def _refused(root: Path) -> ConfigErrors:
    with pytest.raises(ConfigErrors) as info:
        read_work_tree(root)
    assert MARKER not in str(info.value)
    return info.value


def test_a_symlinked_config_file_is_refused_unread(
    repo: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tier file that is a symlink is repo.symlink, naming it; its target is never opened."""
    link = repo / "agents" / "tier-fast.yaml"
    link.unlink()
    link.symlink_to(outside)
    opened: list[str] = []
    real_open = os.open

    def spy(path: str | bytes | os.PathLike[str], *args: object, **kw: object) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    errors = _refused(repo).errors
    assert [e.rule for e in errors] == ["repo.symlink"]
    assert "tier-fast.yaml" in str(errors[0])
    assert not any(str(outside) in p or p.endswith("id_ed25519") for p in opened)


def test_a_symlinked_directory_is_refused(repo: Path, outside: Path) -> None:
    """`alerts -> /somewhere` would glob files beyond the repo: refused, naming the dir."""
    (outside.parent / "x.yaml").write_text(f"rules: []\n# {MARKER}\n")
    (repo / "alerts").symlink_to(outside.parent)
    errors = _refused(repo).errors
    assert [e.rule for e in errors] == ["repo.symlink"]
    assert "alerts" in str(errors[0])


def test_a_fifo_is_not_a_regular_file(repo: Path) -> None:
    """A named pipe would hang the reader: repo.not-regular, without opening it."""
    os.mkfifo(repo / "shards" / "two.yaml")
    errors = _refused(repo).errors
    assert [e.rule for e in errors] == ["repo.not-regular"]
    assert "two.yaml" in str(errors[0])


def test_a_symlink_committed_to_git_is_refused(repo: Path, outside: Path) -> None:
    """A blob of mode 120000 is a symlink: repo.symlink at <sha>:<path>, never read."""
    (repo / "agents" / "tier-fast.yaml").unlink()
    (repo / "agents" / "tier-fast.yaml").symlink_to(outside)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "hostile")
    with pytest.raises(ConfigErrors) as info:
        read_revision(repo, "HEAD")
    assert [e.rule for e in info.value.errors] == ["repo.symlink"]
    assert ":agents/tier-fast.yaml" in str(info.value)
    assert str(outside) not in str(info.value)


def test_too_many_files_are_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More config files than MAX_REPO_FILES: one repo.too-large error naming the cap."""
    monkeypatch.setattr(repo_files, "MAX_REPO_FILES", 5)
    for i in range(5):
        (repo / "alerts" / f"a{i}.yaml").parent.mkdir(exist_ok=True)
        (repo / "alerts" / f"a{i}.yaml").write_text("rules: []\n")
    errors = _refused(repo).errors
    assert [e.rule for e in errors] == ["repo.too-large"]
    assert "5 files" in errors[0].message


def test_too_many_bytes_are_refused_in_git_too(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More bytes than MAX_REPO_BYTES: repo.too-large naming the cap, work tree and git."""
    monkeypatch.setattr(repo_files, "MAX_REPO_BYTES", 2000)
    (repo / "alerts").mkdir()
    (repo / "alerts" / "big.yaml").write_text("rules: []\n" + "# padding\n" * 300)
    errors = _refused(repo).errors
    assert [e.rule for e in errors] == ["repo.too-large"]
    assert "2,000 bytes" in errors[0].message
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "big")
    with pytest.raises(ConfigErrors) as info:
        read_revision(repo, "HEAD")
    assert [e.rule for e in info.value.errors] == ["repo.too-large"]
