"""`pip install .` brings what requirements.txt does: pyproject.toml's dependency lists equal requirements*.txt.

A Hugging Face Space installs requirements.txt, a notebook user `pip install .` or `.[dev]`; the two must not drift.
"""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def requirements(name: str) -> list[str]:
    """The requirement lines of a requirements file, without comments and `-r` includes."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-r")]


def test_pyproject_lists_the_requirements_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == requirements("requirements.txt")
    extras = project["optional-dependencies"]
    assert extras["ray"] == requirements("requirements-ray.txt")
    assert extras["dev"] == ["vitattn[ray]", *requirements("requirements-dev.txt")]


def test_requirements_dev_includes_the_runtime_and_ray_lists():
    text = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in text and "-r requirements-ray.txt" in text
