"""Is the holder of a lock or a lease still there? Who a process is, and the one rule.

A holder is (machine id, boot id, pid, process start time), beside the user and host
names shown to people. On this machine (same machine id and host name) a holder is
gone when the machine rebooted since (another boot id), its pid is not alive, or the
pid is alive but started at another time (the pid was reused). A holder on another
machine is never judged here: it is dead only when its heartbeat is older than
`STALE_AFTER_S` (three renewal periods; `heartbeat_stale`). A record written before
these fields existed (absent: unknown) falls back to the old rule: same host name and
no such pid.

The machine id is /etc/machine-id (else /var/lib/dbus/machine-id, else the host name),
the boot id /proc/sys/kernel/random/boot_id, the start time field 22 of /proc/PID/stat
(clock ticks since boot). Where /proc is missing, both read as unknown.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

HEARTBEAT_S: Final = 10.0  # a live holder renews its lock or lease heartbeat this often
STALE_AFTER_S: Final = 3 * HEARTBEAT_S  # a heartbeat this old: the holder is dead

_MACHINE_ID_FILES: Final = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_BOOT_ID_FILE: Final = Path("/proc/sys/kernel/random/boot_id")


class Identified(Protocol):
    """What a lock or lease record says of its holder (None: the record predates it)."""

    @property
    def host(self) -> str: ...

    @property
    def pid(self) -> int: ...

    @property
    def machine_id(self) -> str | None: ...

    @property
    def boot_id(self) -> str | None: ...

    @property
    def start_time(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Identity:
    """One process on one machine, as a lock or lease records it."""

    host: str
    pid: int
    machine_id: str | None
    boot_id: str | None
    start_time: int | None


def _first_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text or None


@functools.cache
def machine_id() -> str:
    """This machine's id: /etc/machine-id, else /var/lib/dbus/machine-id, else the host name."""
    for path in _MACHINE_ID_FILES:
        if (found := _first_line(path)) is not None:
            return found
    return f"host:{socket.gethostname()}"


def boot_id() -> str | None:
    """This boot's id (None where the kernel does not say)."""
    return _first_line(_BOOT_ID_FILE)


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return start_ticks(raw)


def start_ticks(stat: bytes) -> int | None:
    """Field 22 (starttime) of a /proc/PID/stat line, or None when it is not one."""
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields go on
    # after the last ")" with field 3 (state), so field 22 is the 20th after it.
    fields = stat[stat.rfind(b")") + 1 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def here() -> Identity:
    """This process on this machine."""
    pid = os.getpid()
    return Identity(socket.gethostname(), pid, machine_id(), boot_id(), start_time(pid))


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_this_machine(holder: Identified) -> bool:
    """The record was written on this machine (by machine id and host name; an old record
    without a machine id: by host name)."""
    me = here()
    if holder.host != me.host:
        return False
    return holder.machine_id is None or holder.machine_id == me.machine_id


def holder_gone(holder: Identified) -> bool:
    """The holder was on this machine and is certainly not running any more: the machine
    rebooted since, its pid is not alive, or its pid now belongs to a later process.
    False for a holder on another machine (judge it by its heartbeat)."""
    if not on_this_machine(holder):
        return False
    me = here()
    if holder.boot_id is not None and me.boot_id is not None and holder.boot_id != me.boot_id:
        return True
    if not process_alive(holder.pid):
        return True
    if holder.start_time is None:
        return False
    now_started = start_time(holder.pid)
    return now_started is not None and now_started != holder.start_time


def heartbeat_stale(heartbeat: datetime | None, now: datetime) -> bool:
    """The heartbeat is older than three renewal periods (None: no heartbeat recorded)."""
    return heartbeat is not None and (now - heartbeat).total_seconds() > STALE_AFTER_S
