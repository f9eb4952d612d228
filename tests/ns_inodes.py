"""Namespace inodes of the tool's own process, captured on the Debian 12 test machine, shared by fixture trees."""

from __future__ import annotations

HOST_NS: dict[str, int | None] = {
    "cgroup": 4026531835,
    "ipc": 4026531839,
    "mnt": 4026531832,
    "net": 4026531833,
    "pid": 4026531836,
    "pid_for_children": 4026531836,
    "time": 4026531834,
    "time_for_children": 4026531834,
    "user": 4026531837,
    "uts": 4026531838,
}
NEW_MNT = 4026532401
NEW_PID = 4026532402
