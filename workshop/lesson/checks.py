"""Runs a step's checks: host shell scripts that look at kernel state, with a few helpers for readability.

A check passes when its script exits 0. Scripts run with `set -euo pipefail`, so each line is an assertion; on
failure the learner sees which line failed (from bash's xtrace) and what the script printed. Bash's `set -e`
ignores `! cmd` and every command of an `a && b` list but the last, so the loader rejects those in checks and
the prelude offers `not cmd` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from workshop.engine import processes
from workshop.lesson.model import Check

PRELUDE = r"""
set -euo pipefail
# not CMD...         -> succeeds when CMD fails; use it instead of `! CMD`, which `set -e` never treats as a failure
not() { if "$@"; then return 1; fi; return 0; }
# ns PID TYPE        -> e.g. pid:[4026532401], the namespace a process is in
ns() { readlink "/proc/$1/ns/$2"; }
# host_ns TYPE       -> the namespace workshop itself runs in (the learner's "host")
host_ns() { readlink "/proc/$WORKSHOP_PID/ns/$1"; }
# in_host_ns PID TYPE -> true when the process shares the host's namespace of that type
in_host_ns() { [ "$(ns "$1" "$2")" = "$(host_ns "$2")" ]; }
# same_ns PID1 PID2 TYPE -> true when both processes share the namespace of that type
same_ns() { [ "$(ns "$1" "$3")" = "$(ns "$2" "$3")" ]; }
# nspid PID          -> the PID as seen inside its innermost PID namespace
nspid() { awk '/^NSpid:/ { print $NF }' "/proc/$1/status"; }
# has_cap PID CAP    -> the process holds CAP (e.g. sys_admin) in its effective set, as capsh decodes CapEff
has_cap() { capsh --decode="$(awk '/^CapEff:/ { print $2 }' "/proc/$1/status")" | tr ',=' '\n\n' | grep -qx "cap_$2"; }
# root_of PID        -> where the process's / is, as seen from the host
root_of() { readlink "/proc/$1/root"; }
# alive PID          -> the process exists and is not a zombie
alive() { [ -e "/proc/$1/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat"; }
# mounted PATH       -> something is mounted there in the host's mount namespace
mounted() { awk -v t="$1" '$5 == t { found = 1 } END { exit !found }' "/proc/$WORKSHOP_PID/mountinfo"; }
# mounted_in PID PATH -> something is mounted there in that process's mount namespace, PATH as it sees it (from
#                        its own /, so /srv for a process chrooted or pivoted into an image)
mounted_in() { awk -v t="$2" '$5 == t { found = 1 } END { exit !found }' "/proc/$1/mountinfo"; }
# overlay_layer PATH KEY DIR -> the directory the overlay mounted at PATH uses as KEY (lowerdir, upperdir,
#                        workdir), absolute: overlay keeps the option as typed, so a relative one is taken from DIR,
#                        the directory of the shell that mounted it
overlay_layer() {
  local v
  v=$(findmnt -n -o FS-OPTIONS -M "$1" | tr , '\n' | sed -n "s/^$2=//p")
  case $v in /*) ;; *) v="$3/$v" ;; esac
  realpath -e "$v"
}
# session_pids_outside_host_pidns -> this session's processes living in another PID namespace
session_pids_outside_host_pidns() {
  local env d ns host
  host=$(host_ns pid)
  # one grep over every environment on the machine (a NUL-separated list), not two processes per process
  for env in $(grep -lzx "WORKSHOP_SESSION=$WORKSHOP_SESSION" /proc/[0-9]*/environ 2>/dev/null); do
    d=${env%/environ}
    # a process that exited meanwhile (this check's own subshells carry the variable too) is not a leftover
    ns=$(readlink "$d/ns/pid" 2>/dev/null) || continue
    if [ "$ns" != "$host" ]; then echo "${d#/proc/}"; fi
  done
  return 0
}
# no_session_pids_outside_host_pidns -> true when none is left
no_session_pids_outside_host_pidns() { [ -z "$(session_pids_outside_host_pidns)" ]; }
# eventually CMD...  -> retries CMD for up to 5 s (1 s while a learner types), for what the kernel finishes after
#                       the command that asked for it (a SIGKILLed process is gone a moment after kill returns)
eventually() { local i; for i in $(seq "$WORKSHOP_TICKS"); do if "$@"; then return 0; fi; sleep 0.1; done; "$@"; }
set -x
"""


@dataclass(frozen=True)
class Helper:
    """A function the prelude gives every check: how it is called, and what it says."""

    usage: str
    """e.g. `ns PID TYPE`"""
    meaning: str

    @property
    def name(self) -> str:
        return self.usage.split()[0]


def helpers() -> list[Helper]:
    """The check helpers, read from the prelude's own comments (`# usage -> meaning`, continued on lines that
    start with '#' and spaces): the one table the code, `workshop check` and the author's guide all use."""
    found: list[Helper] = []
    for line in PRELUDE.splitlines():
        if line.startswith("# ") and "->" in line:
            usage, _, meaning = line[2:].partition("->")
            found.append(Helper(" ".join(usage.split()), meaning.strip()))
        elif line.startswith("#  ") and found:
            found[-1] = Helper(found[-1].usage, f"{found[-1].meaning} {line.lstrip('#').strip()}")
    return found


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    output: str
    """What the script printed (stdout and stderr without the trace), for a failing check."""
    failed_at: str = ""
    """The last command the script ran before it failed."""


def run_check(check: Check, script: str, session: str, timeout: float = 30.0, patience: float = 5.0) -> CheckResult:
    """`script` is the check's text after variable substitution; `eventually` waits up to `patience` seconds."""
    ticks = str(max(1, round(patience * 10)))
    env = {"WORKSHOP_PID": str(os.getpid()), "WORKSHOP_SESSION": session, "PS4": "+ ", "WORKSHOP_TICKS": ticks}
    done = processes.run(["/bin/bash", "--noprofile", "--norc", "-c", PRELUDE + script], timeout=timeout, env=env)
    trace = [ln[2:] for ln in done.stderr.splitlines() if ln.startswith("+ ")]
    said = [ln for ln in done.stderr.splitlines() if not ln.startswith("+")]
    output = "\n".join(x for x in (done.stdout.strip(), "\n".join(said).strip()) if x)
    if done.timed_out:
        output = (output + f"\n(the check did not finish within {timeout:g}s)").strip()
    return CheckResult(check, done.ok, output, "" if done.ok else (trace[-1] if trace else ""))
