"""``import foundry``: the user's front door, loaded lazily."""

import subprocess
import sys

import pytest

import foundry


def test_importing_foundry_loads_no_adapter_and_no_cli_module() -> None:
    script = (
        "import sys, foundry; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('foundry'))))"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()

    assert loaded == ["foundry"]


def test_a_registry_from_the_facade_loads_no_adapter() -> None:
    script = (
        "import sys, foundry; foundry.JobRegistry(); foundry.RetryPolicy(); "
        "print(' '.join(m for m in sys.modules if m.startswith(('foundry.adapters', "
        "'foundry.entrypoints', 'redis'))))"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()

    assert loaded == []


def test_every_exported_name_resolves_to_the_object_of_its_module() -> None:
    from foundry.application.registry import JobRegistry  # noqa: PLC0415
    from foundry.entrypoints.connect import connect  # noqa: PLC0415

    resolved = {name: getattr(foundry, name) for name in foundry.__all__}

    assert all(value is not None for value in resolved.values())
    assert resolved["JobRegistry"] is JobRegistry
    assert resolved["connect"] is connect
    assert set(foundry.__all__) <= set(dir(foundry))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Nope"):
        foundry.Nope  # type: ignore[attr-defined]  # noqa: B018
