"""What can run on this machine, and how to fix what cannot.

`diagnose` returns findings (data); the CLI renders them. Every machine fact comes through a `Probe`, so
tests feed fixture machines, and every check is wrapped so that a probe error becomes a finding, never an
exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from workshop.doctor.checks import CHECKS, KEYS, NAMESPACES, OFFERED, TOOLS
from workshop.doctor.probe import FAIL, Finding, Probe, Status
from workshop.environment import Environment
from workshop.lesson.model import (
    REQUIREMENTS,  # what the checks are for; kept importable here
    Lesson,
)

__all__ = [
    "CHECKS",
    "KEYS",
    "NAMESPACES",
    "OFFERED",
    "REQUIREMENTS",
    "TOOLS",
    "Finding",
    "Probe",
    "Readiness",
    "Status",
    "diagnose",
    "exit_status",
    "unmet",
]


def diagnose(env: Environment, probe: Probe | None = None) -> list[Finding]:
    """Run every check; never raises: an error while probing is a FAIL finding carrying the error text."""
    p = probe or Probe(is_root=env.is_root)
    findings = []
    for key, label, check in CHECKS:
        try:
            status, detail, fix = check(env, p)
        except Exception as exc:  # a broken probe must not hide the other findings
            status, detail = FAIL, f"could not check: {type(exc).__name__}: {exc}"
            fix = "resolve the error above (are /proc and /sys mounted and readable?), then: workshop doctor"
        findings.append(Finding(key, label, status, detail, fix))
    return findings


def unmet(requires: Iterable[str], findings: Sequence[Finding]) -> list[Finding]:
    """The FAIL findings a lesson needs, in check order; a needed key that was not checked counts as FAIL."""
    words = list(requires)
    unknown = [w for w in words if w not in REQUIREMENTS]
    if unknown:
        known = ", ".join(sorted(REQUIREMENTS))
        raise ValueError(f"unknown requirement(s) {', '.join(unknown)}; known: {known}")
    needed = {key for w in words for key in REQUIREMENTS[w]}
    by_key = {f.key: f for f in findings}
    out = [by_key[k] for k in KEYS if k in needed and k in by_key and by_key[k].status is FAIL]
    out += [Finding(k, k, FAIL, "not checked") for k in sorted(needed - by_key.keys())]
    return out


def exit_status(findings: Iterable[Finding]) -> int:
    """1 when something every lesson may need fails; what is only offered (`OFFERED`) never fails the machine."""
    return 1 if any(f.status is FAIL and f.key not in OFFERED for f in findings) else 0


class Readiness:
    """What this machine lacks for each lesson; the machine is diagnosed once, when first asked."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._findings: list[Finding] | None = None

    def findings(self) -> list[Finding]:
        if self._findings is None:
            self._findings = diagnose(self.env)
        return self._findings

    def unmet(self, lesson: Lesson) -> list[Finding]:
        return unmet(lesson.requires, self.findings())

    def unmet_text(self, lessons: Iterable[Lesson]) -> dict[str, list[str]]:
        """Per lesson id, what it is missing and how to fix it (`workshop list`, the REPL's `lessons`)."""
        return {x.id: [f"{f.label}: {f.fix or f.detail}" for f in self.unmet(x)] for x in lessons}
