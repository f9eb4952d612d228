"""The cgroup v2 / systemd VM tier: run-in-vm, lessons-in-vm, and their host-side helpers (vmtools)."""
