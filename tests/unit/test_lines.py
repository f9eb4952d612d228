"""Long lines are cut where a reader expects, before a terminal cuts them at its edge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from workshop.ui.lines import fit


def test_a_line_that_fits_stays_whole() -> None:
    assert fit("tar -xf rootfs.tar -C rootfs", 80) == ["tar -xf rootfs.tar -C rootfs"]


def test_a_long_command_is_cut_at_spaces_never_inside_a_path() -> None:
    line = "mkdir /var/lib/workshop/sessions/1f0a6c/upper1 /var/lib/workshop/sessions/1f0a6c/work1 x"
    rows = fit(line, 50)
    assert rows == ["mkdir /var/lib/workshop/sessions/1f0a6c/upper1", "/var/lib/workshop/sessions/1f0a6c/work1 x"]


def test_a_token_longer_than_a_row_is_cut_after_a_separator() -> None:
    options = "rw,relatime,lowerdir=/var/lib/workshop/sessions/1f0a6c/rootfs,upperdir=/var/lib/x/upper1"
    rows = fit(options, 50)
    assert rows[0] == "rw,relatime,"
    assert "".join(rows) == options  # nothing lost: no space was there to drop


def test_tabs_are_expanded_so_the_width_is_the_one_the_terminal_shows() -> None:
    assert fit("2.0M\trootfs", 80) == ["2.0M    rootfs"]


def test_wide_characters_count_as_two_cells() -> None:
    assert all(cell_len(row) <= 10 for row in fit("容器" * 12, 10))


@given(st.text(alphabet=st.sampled_from("ab /,=\t容"), max_size=300), st.integers(min_value=8, max_value=140))
def test_every_row_fits_and_only_spaces_at_cuts_are_lost(text: str, width: int) -> None:
    rows = fit(text, width)
    assert all(cell_len(row) <= width for row in rows)
    assert "".join(rows).replace(" ", "") == text.expandtabs(8).replace(" ", "")
