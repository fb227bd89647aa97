"""A harness that owns a process group and then waits to be killed (test_orphans.py).

Usage: python orphan_harness.py PORT LOG_DIR [--stubborn]. It starts, under a Supervisor, a
server on PORT whose own child sleeps (a process group of two), prints `owned PID CHILD_PID` and
sleeps. With --stubborn both ignore SIGTERM, so only a SIGKILL ends them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from bench.launch.supervisor import LaunchSpec, Supervisor, port_in_use

SERVER = """
import signal, socket, subprocess, sys, time
stubborn = sys.argv[2] == "1"
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time\\n"
    + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n" if stubborn else "")
    + "time.sleep(600)"])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(600)
"""


def main() -> None:
    port, logs, stubborn = int(sys.argv[1]), Path(sys.argv[2]), "--stubborn" in sys.argv
    spec = LaunchSpec(
        name="orphan-server",
        command=[sys.executable, "-c", SERVER, str(port), "1" if stubborn else "0"],
        cwd=logs,
        cpus=[0],
        ports=[port],
        ready=lambda: port_in_use(port),
        ready_timeout_s=20,
        log_path=logs / "server.log",
    )
    supervisor = Supervisor()
    with supervisor.running():
        proc = supervisor.start(spec)
        deadline = time.monotonic() + 20
        while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children()
        print("owned", proc.pid, *(c.pid for c in children), flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
