"""The package as it is built: the wheel holds every file of ``bridge/`` (each subpackage,
the Lua scripts, the seed sample), found by the build configuration, not listed by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.servers import ROOT

SOURCE = ROOT / "bridge"
# What a build reads besides the package: the configuration, and the files it names.
BUILD_FILES = ["pyproject.toml", "README.md", "LICENSE"]
BUILD_TIMEOUT = 120.0  # seconds; the build itself takes a few


def source_files() -> set[str]:
    """Every file of the package in the source tree, as a path in the wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    # Built from a copy, so that the build's own files (build/, *.egg-info) stay out of
    # the source tree; with build isolation, as pip builds it for anyone.
    tree = tmp_path / "src"
    shutil.copytree(SOURCE, tree / "bridge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, tree / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "-q", "-w", str(dist)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("airudder_bridge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    expected = source_files()
    # The glob is not vacuous: it sees subpackages, the Lua scripts and the seed sample.
    assert {"bridge/store/__init__.py", "bridge/demo/seed_callback.json"} <= expected
    assert any(name.startswith("bridge/store/lua/") for name in expected)
    assert sorted(expected - names) == [], "in the source tree but not in the wheel"
    # Only the package and its metadata: no tests, no benchmarks.
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"bridge"}
