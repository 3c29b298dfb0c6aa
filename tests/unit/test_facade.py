"""``import foundry``: the user's front door, loaded lazily."""

import subprocess
import sys

import pytest

import foundry
import foundry.domain
import foundry.ports


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


@pytest.mark.parametrize("package", [foundry.domain, foundry.ports], ids=lambda p: p.__name__)
def test_the_domain_and_ports_packages_resolve_every_name_they_export(package: object) -> None:
    names: list[str] = package.__all__  # type: ignore[attr-defined]

    resolved = {name: getattr(package, name) for name in names}

    assert all(value is not None for value in resolved.values())
    assert set(names) <= set(dir(package))
    with pytest.raises(AttributeError, match="Nope"):
        package.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_importing_a_domain_class_loads_only_its_module_and_what_it_imports() -> None:
    script = "import sys; from foundry.domain import Job; print(' '.join(sorted(sys.modules)))"

    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()

    assert "foundry.domain.job" in loaded
    assert "foundry.domain.batch" not in loaded
    assert "foundry.domain.periodic" not in loaded


@pytest.mark.parametrize(
    ("module", "name", "home"),
    [
        ("foundry.ports.queue_types", "JobRecord", "foundry.ports.inspection"),
        ("foundry.ports.queue_types", "DeadLetter", "foundry.ports.inspection"),
        ("foundry.ports.queue_types", "QueueStats", "foundry.ports.inspection"),
        ("foundry.ports.batches", "BatchRecord", "foundry.ports.batch_types"),
        ("foundry.ports.cache", "CacheStats", "foundry.ports.cache_types"),
    ],
)
def test_a_value_type_moved_out_of_a_port_module_is_still_importable_from_it(
    module: str, name: str, home: str
) -> None:
    # The types only inspection, batches and cache statistics use live apart, so a worker
    # does not define them; imports from their old homes keep working, at first use.
    script = (
        f"import sys, foundry.ports, {module} as m\n"
        f"print({home!r} in sys.modules)\n"
        f"from {module} import {name}\n"
        f"import {home} as h\n"
        f"print({name} is h.{name} is foundry.ports.{name}, {name!r} in dir(m))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()

    assert result == ["False", "True", "True"]
