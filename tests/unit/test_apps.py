from pathlib import Path

import pytest

from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError
from foundry.entrypoints.apps import app_queues, load_app
from foundry.entrypoints.demo import app as demo_app

NOT_A_REGISTRY = 42


def handler(user_id: int, note: str) -> None: ...


def echo(value: object) -> str:
    return str(value)


REGISTRY = JobRegistry()


@REGISTRY.job(name="registered")
def registered(value: object) -> None:
    raise AssertionError("a handler named as the app must not be called")


def build(container: object) -> JobRegistry:
    registry = JobRegistry()

    @registry.job(name="built", queue=f"q{container}")
    def built() -> None: ...

    return registry


EMPTY = JobRegistry()  # its handlers' module was never imported


def test_a_registry_attribute_is_loaded_as_is() -> None:
    assert load_app("foundry.entrypoints.demo.app:registry") is demo_app.registry


def test_a_factory_is_called_with_the_container() -> None:
    registry = load_app(f"{__name__}:build", container=7)

    assert registry.names() == ["built"]
    assert app_queues(registry) == ("q7",)


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("foundry.entrypoints.demo.app", "module:attribute"),
        (":registry", "module:attribute"),
        ("foundry.entrypoints.demo.nope:registry", "cannot import foundry.entrypoints.demo.nope"),
        ("foundry.entrypoints.demo.app:nothing", "has no attribute 'nothing'"),
        (f"{__name__}:NOT_A_REGISTRY", "is a int, not a JobRegistry: name the registry"),
        (f"{__name__}:handler", "cannot take the container as its one argument"),
        (f"{__name__}:registered", f"is a handler, not an app: .* --app {__name__}:REGISTRY$"),
        (f"{__name__}:echo", "returned a str when called with the container, not a JobRegistry"),
        (f"{__name__}:EMPTY", f"--app '{__name__}:EMPTY' has no handlers: a worker would send"),
    ],
)
def test_a_bad_app_is_a_configuration_error_that_says_what_is_wrong(spec: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match=hint):
        load_app(spec)


@pytest.mark.parametrize(
    ("name", "source", "fix"),
    [
        ("lacks_a_dependency", "import not_installed_anywhere\n", "install not_installed_anywhere"),
        ("imports_a_missing_name", "from json import no_such_name\n", "fix that import"),
    ],
)
def test_an_app_whose_own_imports_fail_is_told_apart_from_a_wrong_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str, fix: str
) -> None:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(tmp_path)

    with pytest.raises(
        ConfigurationError, match=f"{name} was found, but importing it failed .*; {fix}"
    ):
        load_app(f"{name}:registry")


def test_the_app_queues_come_from_its_handlers_and_default_to_default() -> None:
    assert app_queues(demo_app.registry) == ("demo",)
    assert app_queues(JobRegistry()) == ("default",)
