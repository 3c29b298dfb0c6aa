"""The ``foundry`` command."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def main() -> None:
    """Print the version (the full CLI arrives with the pool)."""
    try:
        print(f"foundry {version('foundry')}")
    except PackageNotFoundError:
        print("foundry (not installed)")
