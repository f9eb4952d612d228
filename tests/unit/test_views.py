"""What the learner reads after a step: the pstree and namespace views, rendered as plain text at 100 columns."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

from rich.console import Console, RenderableType

from tests.ns_inodes import HOST_NS, NEW_MNT, NEW_PID
from workshop.observe.process_diff import Diff, diff
from workshop.observe.process_tree import NS_TYPES, Proc, Snapshot
from workshop.ui import process_views
from workshop.ui.theme import THEME  # the views use only the theme's style names

IN_CONTAINER = {"mnt": NEW_MNT, "pid": NEW_PID, "pid_for_children": NEW_PID}


def proc(
    pid: int,
    ppid: int,
    comm: str,
    *,
    cmdline: str | None = None,
    nspid: tuple[int, ...] | None = None,
    ns: Mapping[str, int | None] | None = None,
    root: str | None = "/",
    starttime: int = 1000,
) -> Proc:
    return Proc(
        pid=pid,
        ppid=ppid,
        comm=comm,
        cmdline=comm if cmdline is None else cmdline,
        nspid=(pid,) if nspid is None else nspid,
        ns={**HOST_NS, **(ns or {})},
        root=root,
        starttime=starttime,
        tpgid=-1,
    )


def snapshot_of(procs: Iterable[Proc], roots: Mapping[str, int], focus: Mapping[str, int]) -> Snapshot:
    by_pid = {p.pid: p for p in procs}
    return Snapshot(procs=by_pid, roots=roots, focus=focus, host_ns=HOST_NS)


def console_bash() -> Proc:
    return proc(4200, 100, "bash", cmdline="bash --norc")


def in_container() -> list[Proc]:
    """bash 4200 ran `unshare -p -m -f sh`: unshare moved into the new mnt ns, its child sh is PID 1."""
    return [
        console_bash(),
        proc(
            4241,
            4200,
            "unshare",
            cmdline="unshare -p -m -f sh",
            ns={"mnt": NEW_MNT, "pid_for_children": NEW_PID},
        ),
        proc(4242, 4241, "sh", nspid=(4242, 1), ns=IN_CONTAINER),
    ]


def before_unshare() -> Snapshot:
    return snapshot_of([console_bash()], {"container": 4200}, {"container": 4200})


def after_unshare() -> Snapshot:
    return snapshot_of(in_container(), {"container": 4200}, {"container": 4242})


def render(renderable: RenderableType) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None, theme=THEME).print(renderable)
    return out.getvalue()


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# --- pstree ---


def test_pstree_shows_host_pid_inner_pid_and_transitions_like_pstree_S() -> None:
    after = after_unshare()
    text = render(process_views.pstree_view(after, diff(before_unshare(), after)))

    assert "pstree" in text.splitlines()[0]
    assert "container  bash(4200)  bash --norc" in text
    assert "+ unshare(4241) (mnt)  unshare -p -m -f sh" in text
    [sh_line] = lines_with(text, "sh(4242)")
    assert "+ sh(4242)[1] (pid)" in sh_line
    assert process_views.FOCUS_MARK in sh_line  # the learner now talks to the container's shell
    assert process_views.FOCUS_MARK not in lines_with(text, "bash(4200)")[0]
    # children hang below their parent, in a tree
    assert text.index("bash(4200)") < text.index("unshare(4241)") < text.index("sh(4242)")
    assert "└── " in text


def test_a_process_started_inside_namespaces_is_marked_against_the_host() -> None:
    root = proc(5000, 100, "sh", nspid=(5000, 1), ns=IN_CONTAINER)
    after = snapshot_of([root], {"container": 5000}, {"container": 5000})

    text = render(process_views.pstree_view(after, diff(after, after)))

    assert "container  sh(5000)[1] (mnt,pid)" in text
    assert "+" not in text  # nothing is new when nothing changed


def test_children_are_sorted_by_pid_and_only_new_ones_are_marked() -> None:
    bash = console_bash()
    before = snapshot_of([bash, proc(4300, 4200, "sleep", cmdline="sleep 100")], {"host": 4200}, {"host": 4200})
    after = snapshot_of(
        [bash, proc(4300, 4200, "sleep", cmdline="sleep 100"), proc(4250, 4200, "cat")],
        {"host": 4200},
        {"host": 4200},
    )

    text = render(process_views.pstree_view(after, diff(before, after)))

    assert text.index("cat(4250)") < text.index("sleep(4300)")
    assert "+ cat(4250)" in text
    assert "+ sleep" not in text


def test_gone_processes_are_listed_below_the_tree() -> None:
    before, after = after_unshare(), before_unshare()

    text = render(process_views.pstree_view(after, diff(before, after)))

    assert "exited: unshare(4241), sh(4242)" in text
    assert "sh(4242)[1]" not in text


def test_unreadable_fields_show_a_question_mark() -> None:
    ghost = proc(4201, 4200, "ghost", cmdline="", nspid=(), ns=dict.fromkeys(NS_TYPES), root=None)
    after = snapshot_of([console_bash(), ghost], {"host": 4200}, {"host": 4200})

    text = render(process_views.pstree_view(after, diff(after, after)))

    [line] = lines_with(text, "ghost(4201)")
    assert "ghost(4201)[?] (?)  [ghost]  root=?" in line


def test_comm_with_spaces_and_parentheses_is_shown_as_is() -> None:
    odd = proc(4201, 4200, "(sd-pam) x)", cmdline="")
    after = snapshot_of([console_bash(), odd], {"host": 4200}, {"host": 4200})

    assert "(sd-pam) x)(4201)  [(sd-pam) x)]" in render(process_views.pstree_view(after, diff(after, after)))


def test_long_command_lines_are_cut_and_a_changed_root_is_shown() -> None:
    long = proc(4201, 4200, "python3", cmdline="python3 " + "x" * 200, root="/srv/rootfs")
    after = snapshot_of([console_bash(), long], {"host": 4200}, {"host": 4200})

    [line] = lines_with(render(process_views.pstree_view(after, diff(after, after))), "python3(4201)")

    assert "python3 " + "x" * (process_views.CMDLINE_WIDTH - len("python3 ") - 1) + "…" in line
    assert "root=/srv/rootfs" in line
    assert len(line) <= 100


def test_a_console_whose_shell_exited_says_so() -> None:
    after = snapshot_of([console_bash()], {"host": 4200, "container": 6000}, {"host": 4200})

    text = render(process_views.pstree_view(after, diff(after, after)))

    assert "container  shell 6000 has exited" in text


def test_a_process_orphaned_while_reading_is_still_shown() -> None:
    # its parent 4241 exited between reading the tree and reading its details
    after = snapshot_of([console_bash(), proc(4242, 4241, "sh")], {"host": 4200}, {"host": 4200})

    text = render(process_views.pstree_view(after, diff(after, after)))

    assert "(parent exited while reading)" in text
    assert "sh(4242)" in text


def test_consoles_appear_in_roots_order() -> None:
    procs = [*in_container(), proc(5000, 100, "bash")]
    after = snapshot_of(procs, {"host": 5000, "container": 4200}, {"host": 5000, "container": 4242})

    text = render(process_views.pstree_view(after, diff(None, after)))

    assert text.index("host  + bash(5000)") < text.index("container  + bash(4200)")


# --- namespaces ---


def test_namespace_table_shows_host_and_new_inodes_per_console() -> None:
    before, after = before_unshare(), after_unshare()

    text = render(process_views.namespace_view(after, diff(before, after)))

    assert "namespaces" in text.splitlines()[0]
    assert "container  pid 4242 → 1" in text
    [pid_row] = lines_with(text, "pid ")[1:2]  # the header line also says "pid 4242"
    assert pid_row.split()[:4] == ["pid", "▶", str(NEW_PID), "●"]  # a changed row is marked at its name too
    assert lines_with(text, "uts")[0].split()[1] != "▶"
    assert f"{HOST_NS['uts']} host" in lines_with(text, "uts")[0]
    assert "● new" in text
    assert f"container: new pid namespace {NEW_PID} (was host {HOST_NS['pid']})" in text
    assert f"container: new mnt namespace {NEW_MNT} (was host {HOST_NS['mnt']})" in text
    assert f"container: new pid namespace for children {NEW_PID}" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_rows_follow_ns_types_order() -> None:
    text = render(process_views.namespace_view(before_unshare(), diff(None, before_unshare())))

    first_words = [line.split()[0] for line in text.splitlines() if line.split() and line.split()[0] in NS_TYPES]
    assert first_words == list(NS_TYPES)


def test_nothing_changed_is_one_quiet_line() -> None:
    after = after_unshare()

    text = render(process_views.namespace_view(after, diff(after, after)))

    assert "no namespace changed since the previous step" in text
    assert "●" not in text


def test_after_a_step_that_changed_no_namespace_one_line_replaces_the_table() -> None:
    after = after_unshare()

    step = render(process_views.namespace_view(after, diff(after, after), whole=False))
    changed = render(process_views.namespace_view(after, diff(before_unshare(), after), whole=False))

    assert step.strip() == "namespaces — no namespace changed since the previous step (`ns` shows the table)"
    assert "pid_for_children" in changed and "● new" in changed  # a change still gets the whole table


def test_leaving_the_container_is_back_to_host_and_its_namespaces_are_gone() -> None:
    before, after = after_unshare(), before_unshare()

    text = render(process_views.namespace_view(after, diff(before, after)))

    assert f"{HOST_NS['pid']} host ● back" in text
    assert f"container: back in the host's pid namespace {HOST_NS['pid']} (was {NEW_PID})" in text
    assert f"gone: pid {NEW_PID} — no lesson process uses it any more" in text
    assert f"gone: mnt {NEW_MNT}" in text
    assert "gone: pid_for_children" not in text  # the same namespace, said once


def test_nsenter_into_another_consoles_container_reads_as_joined() -> None:
    roots = {"container": 4200, "container2": 5000}
    before = snapshot_of([*in_container(), proc(5000, 100, "bash")], roots, {"container": 4242, "container2": 5000})
    after = snapshot_of(
        [
            *in_container(),
            proc(5000, 100, "bash"),
            proc(5001, 5000, "nsenter", ns={"mnt": NEW_MNT, "pid_for_children": NEW_PID}),
            proc(5002, 5001, "sh", nspid=(5002, 2), ns=IN_CONTAINER),
        ],
        roots,
        {"container": 4242, "container2": 5002},
    )

    text = render(process_views.namespace_view(after, diff(before, after)))

    assert "container2  pid 5002 → 2" in text
    assert "● joined" in text
    assert f"container2: joined pid namespace {NEW_PID}, shared with sh(4242) (was host {HOST_NS['pid']})" in text
    assert "gone:" not in text


def test_unreadable_namespaces_show_a_question_mark_and_gone_focus_a_dash() -> None:
    zombie = proc(4242, 4241, "sh", nspid=(4242, 1), ns=dict.fromkeys(NS_TYPES), cmdline="")
    procs = [*in_container()[:2], zombie]
    after = snapshot_of(procs, {"container": 4200, "old": 6000}, {"container": 4242})

    text = render(process_views.namespace_view(after, diff(after_unshare(), after)))

    assert "old  (gone)" in text
    [net_row] = [line for line in text.splitlines() if line.startswith("net ")]
    assert net_row.split()[1:] == ["▶", "?", "●", "unreadable", "—"]
    # one line for the whole loss, not ten
    [summary] = lines_with(text, "can no longer read")
    assert summary == "container: can no longer read any of its namespaces"


def test_first_step_reports_what_is_not_the_hosts_as_new() -> None:
    after = after_unshare()

    text = render(process_views.namespace_view(after, diff(None, after)))

    assert f"container: new pid namespace {NEW_PID} (the host's is {HOST_NS['pid']})" in text


def test_three_consoles_coming_back_to_the_host_fit_100_columns_without_wrapping() -> None:
    roots = {"host": 6000, "container": 4200, "container2": 5000}
    before = snapshot_of(
        [*in_container(), proc(5000, 100, "bash", ns=IN_CONTAINER), proc(6000, 100, "bash", ns={"net": 4026532999})],
        roots,
        {"host": 6000, "container": 4242, "container2": 5000},
    )
    after = snapshot_of(
        [console_bash(), proc(5000, 100, "bash"), proc(6000, 100, "bash")],
        roots,
        {"host": 6000, "container": 4200, "container2": 5000},
    )
    d: Diff = diff(before, after)

    text = render(process_views.pstree_view(after, d)) + render(process_views.namespace_view(after, d))

    assert all(len(line) <= 100 for line in text.splitlines())
    rows = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in NS_TYPES}
    assert rows["pid"].count("host ● back") == 2  # container and container2, each on one line
    assert rows["net"].count("host ● back") == 1
    assert "exited: unshare(4241), sh(4242)" in text
