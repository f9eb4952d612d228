"""System call numbers come from one place that knows every architecture, and an unknown one is an error."""

from __future__ import annotations

import pytest

from workshop import arch


@pytest.mark.parametrize(
    ("name", "machine", "number"),
    [("pivot_root", "x86_64", 155), ("pivot_root", "aarch64", 41), ("read", "x86_64", 0), ("read", "arm64", 63)],
)
def test_a_system_call_has_the_number_of_its_architecture(name: str, machine: str, number: int) -> None:
    assert arch.syscall_number(name, machine) == number


def test_a_call_an_architecture_lacks_is_an_error_naming_both() -> None:
    with pytest.raises(arch.ArchError, match="'mkdir' is not a system call on aarch64"):
        arch.syscall_number("mkdir", "aarch64")
    assert arch.syscall_number("mkdirat", "aarch64") == 34


def test_an_unknown_architecture_is_an_error_not_a_guess() -> None:
    with pytest.raises(arch.ArchError, match="unknown architecture 's390x'"):
        arch.syscall_number("read", "s390x")


def test_this_machine_has_its_read() -> None:
    assert arch.syscall_number("read") >= 0
