"""The wheel is built from an explicit package list (the lessons folder is mapped into it as workshop/lessons):
a new subpackage of workshop must be added there, or an installed workshop would miss it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_every_subpackage_of_workshop_is_in_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "workshop").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"workshop.lessons"}
    assert config["package-dir"] == {"workshop.lessons": "lessons"}
