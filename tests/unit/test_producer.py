"""A producer through the public API: the traps a new user walked into stay closed."""

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import foundry
from foundry.entrypoints.settings import Driver
from tests.log_support import foundry_messages


def send_welcome(user_id: int, template: str = "welcome") -> None:
    pass


registry = foundry.JobRegistry()
registry.job(name="mail.welcome")(send_welcome)


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Foundry's WARNING (and worse) records, read with ``foundry_messages``."""
    caplog.set_level(logging.WARNING, logger="foundry")
    return caplog


@pytest.fixture
def dispatcher() -> Iterator[foundry.Dispatcher]:
    with foundry.connect(foundry.Settings(queue_driver="memory")) as fx:
        yield fx.dispatcher(registry)


def test_a_redis_url_without_a_driver_chooses_redis_for_queue_and_cache() -> None:
    settings = foundry.Settings.from_env({"REDIS_URL": "redis://10.0.0.5:6379/1"})

    assert (settings.queue_driver, settings.cache_driver) == (Driver.REDIS, Driver.REDIS)


def test_without_a_redis_url_the_drivers_are_memory_and_an_explicit_driver_wins() -> None:
    nothing = foundry.Settings.from_env({})
    explicit = foundry.Settings.from_env({"REDIS_URL": "redis://h:1/0", "CACHE_DRIVER": "memory"})

    assert (nothing.queue_driver, nothing.cache_driver) == (Driver.MEMORY, Driver.MEMORY)
    assert (explicit.queue_driver, explicit.cache_driver) == (Driver.REDIS, Driver.MEMORY)


def test_settings_take_a_driver_as_a_string_and_refuse_an_unknown_one() -> None:
    with pytest.raises(foundry.ConfigurationError, match="use 'memory', 'redis' or 'postgres'"):
        foundry.Settings(queue_driver="rabbit")  # type: ignore[arg-type]

    assert foundry.Settings(queue_driver="redis").queue_driver is Driver.REDIS  # type: ignore[arg-type]
    assert foundry.Settings(redis_url="redis://h:1/0").cache_driver is Driver.REDIS


def test_the_first_dispatch_into_a_private_memory_queue_warns_once_where_the_job_went(
    dispatcher: foundry.Dispatcher, warnings: pytest.LogCaptureFixture
) -> None:
    first = dispatcher.dispatch(send_welcome, {"user_id": 1})
    dispatcher.dispatch(send_welcome, {"user_id": 2})
    dispatcher.dispatch_many([(send_welcome, {"user_id": 3})])

    [warning] = foundry_messages(warnings)
    assert first in warning
    assert "in-memory queue" in warning
    assert "REDIS_URL" in warning


@pytest.mark.parametrize("payload", [5, [5], "user_id=5", (("user_id", 5),)])
def test_a_payload_that_is_not_a_dict_is_refused_with_the_fix(
    dispatcher: foundry.Dispatcher, payload: object
) -> None:
    with pytest.raises(foundry.InvalidJob, match=r"a payload is a dict") as refused:
        dispatcher.dispatch(send_welcome, payload)  # type: ignore[arg-type]

    assert refused.value.field == "payload"


def test_dispatch_many_of_bare_handlers_is_refused_with_the_fix(
    dispatcher: foundry.Dispatcher,
) -> None:
    with pytest.raises(foundry.InvalidJob, match=r"\(handler, payload\) pairs") as refused:
        dispatcher.dispatch_many([send_welcome, send_welcome])  # type: ignore[list-item]

    assert refused.value.field == "items"


def test_a_payload_missing_a_required_argument_is_refused_at_dispatch(
    dispatcher: foundry.Dispatcher,
) -> None:
    with pytest.raises(foundry.InvalidJob, match="requires the argument 'user_id'"):
        dispatcher.dispatch(send_welcome, {"template": "hello"})


def test_a_payload_with_an_unknown_keyword_is_refused_at_dispatch_and_nothing_is_enqueued(
    dispatcher: foundry.Dispatcher,
) -> None:
    with pytest.raises(foundry.InvalidJob, match="takes no argument 'userid'"):
        dispatcher.dispatch_many([(send_welcome, {"user_id": 1}), (send_welcome, {"userid": 2})])


def test_a_handler_taking_kwargs_accepts_any_keyword(dispatcher: foundry.Dispatcher) -> None:
    own = foundry.JobRegistry()

    @own.job(name="anything")
    def anything(**fields: object) -> None:
        pass

    with foundry.connect(foundry.Settings(queue_driver="memory")) as fx:
        job_id = fx.dispatcher(own).dispatch(anything, {"x": 1, "y": 2})

        record = fx.queue.get(job_id)
        assert record is not None
        assert record.job.payload == {"x": 1, "y": 2}


def test_a_handler_with_positional_only_parameters_is_refused_at_registration() -> None:
    def positional(user_id: int, /) -> None:
        pass

    with pytest.raises(foundry.ConfigurationError, match="positional-only"):
        foundry.JobRegistry().job(name="p")(positional)


def test_something_that_cannot_be_called_is_refused_at_registration() -> None:
    with pytest.raises(foundry.ConfigurationError, match="'n' is a int, which cannot be called"):
        foundry.JobRegistry().job(name="n")(5)  # type: ignore[type-var]


@pytest.mark.redis
def test_a_producer_connected_by_its_redis_url_dispatches_to_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, warnings: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("QUEUE_PREFIX", "producer-test")
    monkeypatch.delenv("QUEUE_DRIVER", raising=False)

    with foundry.connect() as fx:
        job_id = fx.dispatcher(registry).dispatch(send_welcome, {"user_id": 7})
        fx.cache.set("greeting", "hello")
    with foundry.connect() as other:
        record = other.queue.get(job_id)
        cached = other.cache.get("greeting")

    assert record is not None
    assert record.job.payload == {"user_id": 7}
    assert cached == "hello"
    assert foundry_messages(warnings) == []


def test_an_async_dispatcher_on_the_memory_driver_feeds_the_connections_queue_and_warns_once(
    warnings: pytest.LogCaptureFixture,
) -> None:
    fx = foundry.connect(foundry.Settings(queue_driver="memory"))

    async def main() -> list[str]:
        dispatcher = fx.async_dispatcher(registry)
        first = await dispatcher.dispatch(send_welcome, {"user_id": 1})
        rest = await dispatcher.dispatch_many([(send_welcome, {"user_id": 2})])
        await fx.aclose()
        return [first, *rest]

    ids = asyncio.run(main())

    assert [fx.queue.get(job_id).job.payload for job_id in ids] == [  # type: ignore[union-attr]
        {"user_id": 1},
        {"user_id": 2},
    ]
    [warning] = foundry_messages(warnings)
    assert ids[0] in warning


def test_the_connections_async_dispatcher_keeps_batches() -> None:
    fx = foundry.connect(foundry.Settings(queue_driver="memory"))

    async def main() -> str:
        batch_id = await fx.async_dispatcher(registry).batch([(send_welcome, {"user_id": 1})])
        await fx.aclose()
        return batch_id

    batch_id = asyncio.run(main())

    assert fx.queue.batch(batch_id) is not None  # type: ignore[attr-defined]


MEMORY_DISPATCH = """
import foundry
registry = foundry.JobRegistry()
registry.job(name="w")(lambda: None)
with foundry.connect() as fx:
    fx.dispatcher(registry).dispatch("w")
"""


@pytest.mark.parametrize("logging_configured", [False, True], ids=["bare script", "logging"])
def test_a_script_that_configured_no_logging_still_sees_where_its_job_went(
    logging_configured: bool,
) -> None:
    setup = "import logging; logging.basicConfig()\n" if logging_configured else ""
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "QUEUE_DRIVER")}

    ran = subprocess.run(
        [sys.executable, "-c", setup + MEMORY_DISPATCH],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert ran.stderr.count("in-memory queue") == 1  # once: as a warning, or as the log record
    assert ("RuntimeWarning" in ran.stderr) is not logging_configured


@pytest.mark.parametrize("url", ["http://app:secret@cache.example:6379/0", "memory", "localhost"])
def test_connect_refuses_a_url_of_no_backend_naming_the_ones_it_takes(url: str) -> None:
    with pytest.raises(foundry.ConfigurationError) as refused:
        foundry.connect(url)

    message = str(refused.value)
    assert "postgresql://" in message
    assert "memory://" in message
    assert "redis://" in message
    assert "secret" not in message
