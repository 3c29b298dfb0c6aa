"""The Django integration's parts that need no project: settings errors and the child hook."""

from __future__ import annotations

import asyncio
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


def test_an_async_view_dispatches_with_the_async_dispatcher_on_the_settings_queue() -> None:
    from django.test import override_settings  # noqa: PLC0415 - needs the configured Django

    from foundry.contrib.django import async_dispatcher  # noqa: PLC0415
    from tests.e2e.apps import add  # noqa: PLC0415

    async def view() -> tuple[foundry.AsyncDispatcher, str, str]:
        dispatcher = async_dispatcher()
        now = await dispatcher.dispatch(add, {"a": 1, "b": 2})
        # No atomic block is open on the loop's thread: sent at once, as on_commit runs.
        at_commit = await dispatcher.dispatch(add, {"a": 3, "b": 4}, after_commit=True)
        return dispatcher, now, at_commit

    with override_settings(FOUNDRY={"APP": "tests.e2e.apps:registry", "QUEUE_DRIVER": "memory"}):
        dispatcher, now, at_commit = asyncio.run(view())
        queue = project.connection().queue
        stored = [queue.get(now) is not None, queue.get(at_commit) is not None]

    assert isinstance(dispatcher, foundry.AsyncDispatcher)
    assert stored == [True, True]


def test_in_an_async_view_an_atomic_block_run_with_sync_to_async_sends_at_its_commit() -> None:
    from asgiref.sync import sync_to_async  # noqa: PLC0415
    from django.db import transaction  # noqa: PLC0415
    from django.test import override_settings  # noqa: PLC0415

    from foundry.contrib.django import dispatcher  # noqa: PLC0415
    from tests.e2e.apps import add  # noqa: PLC0415

    class Refused(Exception):
        pass

    def sign_up(refuse: bool) -> str:
        job_id = ""
        try:
            with transaction.atomic():
                job_id = dispatcher().dispatch(add, {"a": 1, "b": 2}, after_commit=True)
                if refuse:
                    raise Refused
        except Refused:
            pass
        return job_id

    async def view() -> tuple[str, str]:
        return await sync_to_async(sign_up)(False), await sync_to_async(sign_up)(True)

    with override_settings(FOUNDRY={"APP": "tests.e2e.apps:registry", "QUEUE_DRIVER": "memory"}):
        committed, rolled_back = asyncio.run(view())
        queue = project.connection().queue
        stored = [queue.get(committed) is not None, queue.get(rolled_back) is not None]

    assert stored == [True, False]
