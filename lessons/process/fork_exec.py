"""How every process on Linux is born: fork() copies the caller, exec() replaces the copy's program.

Run it and compare the PIDs: the child is an ordinary process, in the very same namespaces as its parent.
"""

import os

print(f"parent: I am PID {os.getpid()}")
pid = os.fork()
if pid == 0:
    # the child: a copy of the parent, until exec() loads another program into it
    print(f"child:  I am PID {os.getpid()}, my parent is {os.getppid()}; now exec'ing readlink")
    os.execvp("readlink", ["readlink", "/proc/self/ns/pid"])
os.waitpid(pid, 0)
print(f"parent: my child was PID {pid}; my own pid namespace is {os.readlink('/proc/self/ns/pid')}")
