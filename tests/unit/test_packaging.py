"""pyproject.toml as setuptools reads it when ``./dev setup`` installs the project."""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[2]


def test_setuptools_reads_the_project_without_a_deprecation_warning() -> None:
    # A TOML table as project.license printed a SetuptoolsDeprecationWarning on every install.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")

    assert dist.metadata.license_expression == "MIT"
    assert dist.metadata.name == "foundry"
