"""Running a lesson on the kernel: session, consoles, runner, events, journal, cgroup writes, cleanup."""
