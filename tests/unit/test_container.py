import subprocess
import sys

import pytest
from dependency_injector import errors, providers

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.memory.cache import MemoryCache
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.queue import RedisQueue
from foundry.entrypoints.container import build_container, reinit_per_process
from foundry.entrypoints.settings import Driver, Settings


def test_the_memory_driver_builds_one_memory_queue_that_also_registers_workers() -> None:
    container = build_container(Settings(queue_driver=Driver.MEMORY))

    queue = container.queue()

    assert isinstance(queue, MemoryQueue)
    assert container.queue() is queue
    assert container.workers() is queue


def test_the_settings_are_the_ones_given() -> None:
    settings = Settings(queue_prefix="shop")

    container = build_container(settings)

    assert container.settings() is settings
    assert container.config.queue.prefix() == "shop"


def test_an_override_replaces_the_queue_everywhere() -> None:
    container = build_container(Settings())
    mine = MemoryQueue(ManualClock())

    container.queue.override(providers.Object(mine))

    assert container.queue() is mine
    assert container.workers() is mine


def test_an_override_that_is_not_a_queue_is_refused() -> None:
    container = build_container(Settings())
    container.queue.override(providers.Object("not a queue"))

    with pytest.raises(errors.Error, match="is not an instance of"):
        container.queue()


def test_a_new_process_gets_fresh_adapters_but_keeps_overrides() -> None:
    container = build_container(Settings())
    before = container.queue()
    clock = container.clock()

    reinit_per_process(container)

    assert container.queue() is not before
    assert container.clock() is not clock


def test_reinit_keeps_an_overridden_queue() -> None:
    container = build_container(Settings())
    mine = MemoryQueue(ManualClock())
    container.queue.override(providers.Object(mine))

    reinit_per_process(container)

    assert container.queue() is mine


def test_the_redis_driver_builds_a_redis_queue_lazily_without_connecting() -> None:
    settings = Settings(queue_driver=Driver.REDIS, redis_url="redis://127.0.0.1:1/0")
    container = build_container(settings)

    queue = container.queue()

    assert isinstance(queue, RedisQueue)
    assert container.workers() is queue


@pytest.mark.parametrize(
    ("driver", "kind"), [(Driver.MEMORY, MemoryCache), (Driver.REDIS, RedisCache)]
)
def test_cache_driver_picks_the_cache_adapter(driver: Driver, kind: type) -> None:
    container = build_container(Settings(cache_driver=driver, cache_prefix="shop"))

    cache = container.cache()

    assert isinstance(cache, kind)
    assert cache is container.cache()


def test_the_postgres_cache_driver_builds_a_postgres_cache_without_connecting() -> None:
    settings = Settings(
        cache_driver=Driver.POSTGRES, database_url="postgresql://nobody@127.0.0.1:1/none"
    )
    container = build_container(settings)

    cache = container.cache()

    assert isinstance(cache, PostgresCache)
    assert cache is container.cache()
    assert container.cache_check() is None


def test_containers_of_one_process_share_no_provider_the_first_included() -> None:
    # The process's first container takes the Container class's own providers (no copy);
    # those built after it must not see its overrides, settings or singletons.
    script = (
        "from dependency_injector import providers\n"
        "from foundry.adapters.clock import ManualClock\n"
        "from foundry.adapters.memory import MemoryQueue\n"
        "from foundry.entrypoints.container import build_container\n"
        "from foundry.entrypoints.settings import Driver, Settings\n"
        "first = build_container(Settings(queue_driver=Driver.MEMORY, queue_prefix='one'))\n"
        "mine = MemoryQueue(ManualClock())\n"
        "first.queue.override(providers.Object(mine))\n"
        "clock = first.clock()\n"
        "for prefix in ('two', 'three'):\n"
        "    box = build_container(Settings(queue_driver=Driver.MEMORY, queue_prefix=prefix))\n"
        "    assert box.queue() is not mine\n"
        "    assert box.clock() is not clock\n"
        "    assert box.settings().queue_prefix == box.config.queue.prefix() == prefix\n"
        "    box.queue.override(providers.Object(mine))\n"
        "    box.clock()\n"
        "assert first.queue() is mine and first.clock() is clock\n"
        "assert first.settings().queue_prefix == first.config.queue.prefix() == 'one'\n"
        "print('ok')\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
