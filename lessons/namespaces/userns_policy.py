"""May an unprivileged user create a user namespace on this machine? Prints the answer and why.

Three knobs can forbid it: `user.max_user_namespaces=0` (everyone, root included), Debian's older
`kernel.unprivileged_userns_clone=0`, and Ubuntu's AppArmor switch `kernel.apparmor_restrict_unprivileged_userns=1`
(the default since Ubuntu 24.04). The first and the last are what `workshop doctor`'s "user namespaces allowed"
finding reports; this script asks doctor, and adds the Debian one.

usage: userns_policy.py [--quiet]     exit status 0: allowed, 1: refused here (and --quiet prints nothing)
"""

from __future__ import annotations

import sys
from pathlib import Path

from workshop import doctor
from workshop.environment import Environment

SYSCTLS = {
    "user.max_user_namespaces": "user/max_user_namespaces",
    "kernel.unprivileged_userns_clone": "kernel/unprivileged_userns_clone",
    "kernel.apparmor_restrict_unprivileged_userns": "kernel/apparmor_restrict_unprivileged_userns",
}


def sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", SYSCTLS[name]).read_text().strip()
    except OSError:
        return None


def refusals() -> list[str]:
    """Why an unprivileged user is refused a user namespace here; empty when nothing refuses it."""
    env = Environment()
    probe = doctor.Probe(is_root=env.is_root)
    userns_check = next(check for key, _, check in doctor.CHECKS if key == "userns")
    status, detail, fix = userns_check(env, probe)
    why = [] if status is doctor.Status.OK else [f"workshop doctor: {detail} (to change it: {fix})"]
    if sysctl("kernel.unprivileged_userns_clone") == "0":
        why.append("kernel.unprivileged_userns_clone is 0 (to change it: sysctl -w kernel.unprivileged_userns_clone=1)")
    return why


def main() -> int:
    quiet = sys.argv[1:] == ["--quiet"]
    why = refusals()
    if not quiet:
        for name in SYSCTLS:
            value = sysctl(name)
            print(f"{name:46} {value if value is not None else '(not on this kernel)'}")
        if why:
            print("an unprivileged user may NOT create a user namespace here:")
            for reason in why:
                print(f"  {reason}")
        else:
            print("an unprivileged user may create a user namespace here")
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
