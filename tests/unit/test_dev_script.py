"""``./dev setup`` keeps install noise aside: nothing but one line on success, everything on
failure (a stand-in python plays pip, so the test installs nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOISY_PIP = """#!/usr/bin/env bash
for i in $(seq 50); do echo "noise line $i"; done
echo "DEPRECATION: something setuptools says" >&2
[ "$*" != "${FAIL_ON:-none}" ]
"""


def _setup(tmp_path: Path, fail_on: str = "none") -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(NOISY_PIP)
    python.chmod(0o755)
    env = {**os.environ, "FOUNDRY_VENV": str(venv), "PYTHON": sys.executable, "FAIL_ON": fail_on}
    return subprocess.run(
        [str(ROOT / "dev"), "setup"], env=env, capture_output=True, text=True, check=False
    )


def test_a_successful_install_prints_one_line(tmp_path: Path) -> None:
    done = _setup(tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "installing Foundry" in done.stderr


@pytest.mark.parametrize("step", ["-m pip install -q -e .[dev]"])
def test_a_failed_install_shows_its_output_and_fails(tmp_path: Path, step: str) -> None:
    done = _setup(tmp_path, fail_on=step)

    assert done.returncode == 1
    assert "noise line 50" in done.stderr
    assert "DEPRECATION" in done.stderr
    assert "failed (its output is above)" in done.stderr
