"""Styles named by what they mean, not how they look; the renderer and views use only these names."""

from __future__ import annotations

from rich.theme import Theme

STYLES: dict[str, str] = {
    # lesson text
    "lesson.title": "bold cyan",
    "step.title": "bold",
    "step.counter": "cyan",
    "prose": "",
    "command": "bold green",
    "console.name": "magenta",
    "output": "",
    "output.error": "red",
    "hint": "yellow",
    "check.pass": "green",
    "check.fail": "bold red",
    "notice": "cyan",
    "warning": "yellow",
    "error": "bold red",
    "muted": "dim",
    # observer
    "heading": "bold blue",
    "proc.pid": "cyan",
    "proc.nspid": "magenta",
    "proc.new": "bold green",
    "proc.gone": "red strike",
    "proc.focus": "bold",
    "ns.host": "dim",
    "ns.new": "bold yellow",
    "ns.joined": "bold cyan",
    "ns.changed": "bold magenta",
    "ns.gone": "red",
    "ns.transition": "yellow",
    "unknown": "red",
    # extra views (mounts, cgroups, links)
    "mount.new": "bold green",
    "mount.gone": "red",
    "mount.changed": "yellow",
    "cgroup.new": "bold green",
    "cgroup.gone": "red",
    "cgroup.changed": "bold yellow",
    "cgroup.limit": "bold red",
    "link.new": "bold green",
    "link.gone": "red strike",
    "link.changed": "yellow",
    "link.up": "green",
    "link.down": "dim",
    # doctor
    "doctor.ok": "green",
    "doctor.warn": "yellow",
    "doctor.fail": "bold red",
}

THEME = Theme(STYLES)
