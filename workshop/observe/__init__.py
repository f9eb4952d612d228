"""What the kernel shows after a step: /proc snapshots and diffs, and the mounts, cgroups and links views."""
