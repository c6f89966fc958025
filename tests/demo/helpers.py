"""Small helpers for the demo tests: a real SSH client, a real scrape, the head's rendered bytes."""

from __future__ import annotations

import shlex
from pathlib import Path

import asyncssh
import httpx
from prometheus_client.parser import text_string_to_metric_families

from reconciler.config.repo import load_repo
from reconciler.demo import DemoFleet
from reconciler.model.box import BoxPaths
from reconciler.render.canonical import render_payload
from reconciler.repo import read_revision


async def scrape(url: str) -> dict[str, float]:
    """A box's /metrics as {sample name (with le for buckets): value}, summed over other
    labels (task_errors_total over every reason)."""
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
    r.raise_for_status()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            key = f"{s.name}[{s.labels['le']}]" if "le" in s.labels else s.name
            out[key] = out.get(key, 0.0) + s.value
    return out


def per_task(before: dict[str, float], after: dict[str, float], metric: str) -> float:
    """How much of `metric` each task added between two scrapes."""
    tasks = after["tasks_total"] - before["tasks_total"]
    assert tasks > 0, "no task was processed between the scrapes"
    return (after[metric] - before[metric]) / tasks


def rendered(repo: Path, rev: str, agent: str) -> bytes:
    """The config bytes the product renders for `agent` at revision `rev`."""
    loaded = load_repo(read_revision(repo, rev).files)
    return render_payload(loaded.agent(agent).agent.config)


async def write_atomic(sftp: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    """Temp file beside the target, fsync, posix-rename: as the product writes."""
    tmp = str(Path(path).with_name(f".{Path(path).name}.new"))
    async with sftp.open(tmp, "wb") as f:
        await f.write(data)
        await f.fsync()
    await sftp.posix_rename(tmp, path)


async def push_and_reload(
    fleet: DemoFleet, agent: str, data: bytes
) -> asyncssh.SSHCompletedProcess:
    """Write `data` as the box's config over SFTP and run its reload command over SSH."""
    config = str(BoxPaths.of(fleet.box(agent).spec.config_path).config)
    async with asyncssh.connect(**fleet.ssh_options(agent)) as conn:
        async with conn.start_sftp_client() as sftp:
            await write_atomic(sftp, config, data)
        return await conn.run(shlex.join(["agentctl", "reload"]), check=False)


def openssh_args(fleet_dir: Path, port: int, *, sftp: bool = False) -> list[str]:
    """OpenSSH client (ssh, or sftp) options for a demo box: the demo's key and known_hosts."""
    return [
        "-F", "/dev/null",
        "-i", str(fleet_dir / "id_ed25519"),
        "-o", f"UserKnownHostsFile={fleet_dir / 'known_hosts'}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=10",
        "-P" if sftp else "-p", str(port),
    ]  # fmt: skip
