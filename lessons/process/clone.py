"""clone() is fork() with flags: ask for new namespaces and the child starts in them.

`clone.py` asks for both; `clone.py pid`, `clone.py user` or `clone.py none` for fewer, to compare.

The child asks for a new PID namespace and a new user namespace. Inside, it is PID 1, and its user is 65534
("nobody"), because nothing maps its uid yet. The parent sees an ordinary PID. The child then waits so you
can look at both from the host: `pstree`, `/proc/<pid>/status` (NSpid), `/proc/<pid>/ns`.
"""

import ctypes
import os
import signal
import sys

libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
STACK_SIZE = 1024 * 1024

# clone() runs the child on a stack we hand it; stacks grow down, so pass the *end* of the buffer
stack = ctypes.create_string_buffer(STACK_SIZE)
stack_top = ctypes.c_void_p(ctypes.addressof(stack) + STACK_SIZE)

CHILDFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


# the parent waits on this pipe so the two reports come out in order
ready_r, ready_w = os.pipe()


@CHILDFUNC
def child(_: object) -> int:
    print(f"child:  pid: {os.getpid()}  uid: {os.getuid()}", flush=True)
    os.write(ready_w, b"!")
    signal.pause()  # stay alive for inspection; the lesson's cleanup ends us
    return 0


FLAGS = {"pid": CLONE_NEWPID, "user": CLONE_NEWUSER, "none": 0}
asked = sys.argv[1:] or ["pid", "user"]
if any(word not in FLAGS for word in asked):
    sys.exit(f"usage: clone.py [{' | '.join(FLAGS)}]...")
flags = 0
for word in asked:
    flags |= FLAGS[word]

pid = libc.clone(child, stack_top, flags | signal.SIGCHLD, None)
if pid < 0:
    sys.exit(f"clone failed: {os.strerror(ctypes.get_errno())}")
os.read(ready_r, 1)
print(f"parent: pid: {os.getpid()}  uid: {os.getuid()}  my child is pid {pid}", flush=True)
os.waitpid(pid, 0)
