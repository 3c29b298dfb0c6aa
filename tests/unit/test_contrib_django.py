"""The Django integration's parts that need no project: settings errors and the child hook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections

import foundry
from foundry.contrib.django import DjangoDatabases, project
from tests.commit_support import configure_django


@pytest.fixture(autouse=True)
def django_ready() -> Iterator[None]:
    configure_django()
    project._config.cache_clear()
    yield
    project._config.cache_clear()


def test_settings_without_the_registry_are_refused_naming_the_setting() -> None:
    with pytest.raises(foundry.ConfigurationError, match=r"settings.FOUNDRY\['APP'\]"):
        project.registry.__wrapped__()


def test_a_foundry_setting_that_does_not_exist_is_refused_naming_it() -> None:
    from django.test import override_settings  # noqa: PLC0415 - needs the configured Django

    wanted = {"APP": "tests.e2e.apps:registry", "QUEUE_DRIVER": "memory", "QUEUE_PREFX": "shop"}
    with (
        override_settings(FOUNDRY=wanted),
        pytest.raises(
            foundry.ConfigurationError, match=r"settings\.FOUNDRY has no setting named QUEUE_PREFX"
        ),
    ):
        project.connection.__wrapped__()


def test_a_child_forgets_the_parents_database_connection_without_closing_it() -> None:
    connection = connections["default"]
    connection.ensure_connection()
    inherited = connection.connection

    DjangoDatabases().after_fork()

    assert connection.connection is None
    assert inherited.execute("select 1").fetchone() == (1,)  # the parent's is still open
    inherited.close()


def test_override_settings_of_foundry_reaches_the_connection_and_the_dispatcher() -> None:
    from django.test import override_settings  # noqa: PLC0415 - needs the configured Django

    base = {"APP": "tests.e2e.apps:registry", "QUEUE_DRIVER": "memory"}
    seen = []
    for prefix in ("first", "second"):
        with override_settings(FOUNDRY={**base, "QUEUE_PREFIX": prefix}):
            seen.append(
                (project.connection().settings.queue_prefix, project.dispatcher() is not None)
            )
    project.connection.cache_clear()
    project.dispatcher.cache_clear()

    assert seen == [("first", True), ("second", True)]
