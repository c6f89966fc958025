"""The repo edge: work tree and git revisions read into immutable `RepoFiles` snapshots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.config.repo import load_repo
from reconciler.config.source import RepoFiles
from reconciler.repo import GitError, read_revision, read_work_tree, work_tree
from reconciler.repo import files as repo_files

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def fleet_git(tmp_path: Path) -> Path:
    """The example repo, committed once, plus a file that is not part of a config repo."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    (repo / "README.md").write_text("not config\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "fleet")
    return repo


def test_work_tree_snapshot_holds_only_config_files_and_is_immutable() -> None:
    snap = read_work_tree(EXAMPLE)
    assert isinstance(snap, RepoFiles)
    assert "fleet.yaml" in snap and "schemas/agent.schema.json" in snap
    assert "schemas/fleet.schema.json" not in snap  # editor schemas are not read
    assert snap["fleet.yaml"] == (EXAMPLE / "fleet.yaml").read_bytes()
    assert str(EXAMPLE) in snap.origin and snap.sha is None
    with pytest.raises(TypeError):
        snap["fleet.yaml"] = b""  # type: ignore[index]
    assert len(load_repo(snap).agents) == 200


def test_a_revision_equals_its_clean_work_tree(fleet_git: Path) -> None:
    rev = read_revision(fleet_git, "HEAD")
    assert rev.files == read_work_tree(fleet_git)
    assert rev.files.sha == rev.sha and rev.sha[:12] in rev.files.origin
    assert "README.md" not in rev.files
    wt = work_tree(fleet_git)
    assert (wt.dirty, wt.revision, wt.files) == (False, rev.sha, rev.files)


def test_a_dirty_work_tree_is_what_apply_renders(fleet_git: Path) -> None:
    (fleet_git / "agents" / "tier-fast.yaml").write_text("config:\n  concurrency: 2\n")
    wt = work_tree(fleet_git)
    assert wt.dirty and wt.revision.startswith(f"{wt.head}+dirty-")
    assert wt.files["agents/tier-fast.yaml"] == b"config:\n  concurrency: 2\n"
    (fleet_git / "README.md").write_text("still not config\n")
    assert work_tree(fleet_git).revision == wt.revision  # only config files count


def test_git_errors_name_the_path_and_revision(fleet_git: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="unknown revision 'nope'"):
        read_revision(fleet_git, "nope")
    with pytest.raises(GitError, match="is not a git repository"):
        read_revision(tmp_path, "HEAD")


def test_every_file_is_read_through_read_repo_file(
    fleet_git: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one place a later check (symlinks, sizes) goes sees every file of both sources."""
    seen: list[tuple[str, str, bool, int]] = []
    real = repo_files.read_repo_file

    def spy(file: repo_files.RepoFile) -> bytes:
        seen.append((file.rel, file.where, file.is_symlink(), file.size()))
        return real(file)

    monkeypatch.setattr(repo_files, "read_repo_file", spy)
    tree = read_work_tree(fleet_git)
    assert sorted(r for r, *_ in seen) == sorted(tree)
    assert all(size == len(tree[rel]) and not link for rel, _, link, size in seen)
    seen.clear()
    rev = read_revision(fleet_git, "HEAD")
    assert sorted(r for r, *_ in seen) == sorted(rev.files)
    assert all(where == f"{rev.sha}:{rel}" for rel, where, _, _ in seen)
    assert all(size == len(rev.files[rel]) and not link for rel, _, link, size in seen)
