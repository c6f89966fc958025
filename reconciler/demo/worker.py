"""A demo worker process: one event loop running a share of the fleet's boxes.

Started by `reconcile demo up` as `python -m reconciler.demo.worker SPEC`,
with the boxes' listening sockets inherited as file descriptors named in the
SPEC file. It writes its readiness file once every box serves, and stops its
boxes cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from reconciler.demo.box import BoxSpec, DemoBox
from reconciler.demo.build import raise_open_file_limit
from reconciler.demo.fleet import BoxGroup

log = logging.getLogger("reconciler.demo.worker")


def _inherited(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


async def serve(spec: dict[str, Any]) -> None:
    """Run the boxes of `spec` until SIGTERM or SIGINT."""
    boxes = [
        DemoBox(BoxSpec.from_json(b["spec"]), _inherited(b["ssh_fd"]), _inherited(b["http_fd"]))
        for b in spec["boxes"]
    ]
    group = BoxGroup(boxes, tick_s=float(spec.get("tick_s", 1.0)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await group.start()
    ready = Path(spec["ready"])
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
    tmp.replace(ready)
    log.info("worker %s: %d boxes serving", spec.get("index"), len(boxes))
    await stop.wait()
    log.info("worker %s: stopping", spec.get("index"))
    await group.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reconciler.demo.worker SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    raise_open_file_limit(4 * len(spec["boxes"]) + 256)
    asyncio.run(serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
