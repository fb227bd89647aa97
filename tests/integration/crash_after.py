"""Test helper: run a command as a child, then kill it and exit 1 after some seconds.

Stands in for a system that crashes mid-run, and leaves a grandchild for the harness to reap.
Usage: crash_after.py SECONDS COMMAND [ARGS...]
"""

from __future__ import annotations

import subprocess
import sys
import time

delay = float(sys.argv[1])
child = subprocess.Popen(sys.argv[2:])
time.sleep(delay)
child.kill()
child.wait()
sys.exit(1)
