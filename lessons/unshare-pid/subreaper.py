"""A subreaper: orphans below it come to it, not to PID 1.

`prctl(PR_SET_CHILD_SUBREAPER, 1)` marks this process. It then starts `sh -c 'sleep 1000 &'`: the shell exits at
once, its `sleep` is orphaned, and the kernel re-parents it to the nearest subreaper among its ancestors, this
script, instead of the init of the PID namespace. It prints the sleep's parent and stays, so you can look.
`--no-subreaper` leaves the mark off, to compare. This is what tini, `docker run --init`, systemd and
containerd's shims do for the processes below them. The prctl option's number is the same on every architecture.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36

if "--no-subreaper" not in sys.argv[1:]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl failed: {os.strerror(ctypes.get_errno())}")
    print(f"subreaper: PID {os.getpid()} will adopt the orphans below it", flush=True)

# the shell prints its sleep's PID and exits at once: the sleep is an orphan
orphan = subprocess.run(
    ["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"], check=True, capture_output=True, text=True
).stdout.strip()
time.sleep(0.2)
with open(f"/proc/{orphan}/status") as f:
    parent = next(line.split()[1] for line in f if line.startswith("PPid:"))
print(f"orphaned sleep {orphan}: its parent is now PID {parent}", flush=True)
signal.pause()  # stay, so the pstree shows who adopted it; the lesson's cleanup ends us
