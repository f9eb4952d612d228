"""Run a program under a seccomp filter that refuses some system calls with EPERM ("Operation not permitted").

    python3 seccomp_deny.py SYSCALL... -- PROGRAM [ARG...]

The filter is built by libseccomp (through pyseccomp), which knows each architecture's system call numbers by
name: `mkdir` exists on x86_64 but not on arm64, where only `mkdirat` does, so name both. Every other system
call is allowed. The filter is inherited across fork and exec, and can never be removed: the program, and
everything it starts, runs under it. libseccomp sets no_new_privs first, which lets a process without
CAP_SYS_ADMIN install a filter, and stops a set-uid program from escaping it.
"""

import errno
import os
import sys

import pyseccomp as seccomp


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        sys.exit("usage: seccomp_deny.py SYSCALL... -- PROGRAM [ARG...]")
    cut = argv.index("--")
    refused, program = argv[:cut], argv[cut + 1 :]
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in refused:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    rules.load()
    print(f"seccomp: refusing {', '.join(refused) or 'nothing'} with EPERM; exec {' '.join(program)}", flush=True)
    os.execvp(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
