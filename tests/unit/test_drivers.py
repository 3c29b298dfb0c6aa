import pytest

from tests.process_support import python_lines

pytest.importorskip("opentelemetry.metrics")
pytest.importorskip("redis.observability.metrics")

_LATER = (
    "import sys\n"
    "from redis.observability import metrics\n"
    "print('opentelemetry' in sys.modules, metrics.OTEL_AVAILABLE)\n"
    "import opentelemetry.metrics\n"
    "print(metrics.OTEL_AVAILABLE, metrics.Meter is opentelemetry.metrics.Meter)\n"
)


def test_redis_imported_without_opentelemetry_learns_of_it_at_its_import() -> None:
    hidden = python_lines(
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n" + _LATER
    )
    plain = python_lines("import redis\n" + _LATER)

    assert hidden == ["False False", "True True"]
    assert plain == ["True True", "True True"]


def test_a_process_that_imported_opentelemetry_first_keeps_redis_as_it_is() -> None:
    lines = python_lines(
        "import opentelemetry.metrics\n"
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n" + _LATER
    )

    assert lines == ["True True", "True True"]


def test_the_asyncio_client_is_imported_at_its_first_use_and_then_whole() -> None:
    lines = python_lines(
        "import sys\n"
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n"
        "import foundry.entrypoints.cli.work\n"
        "from foundry.adapters.redis.queue import RedisQueue\n"
        "print('redis.asyncio.client' in sys.modules)\n"
        "import redis.asyncio\n"
        "print(redis.asyncio.Redis.__module__, 'redis.asyncio.client' in sys.modules)\n"
        "from redis.asyncio import RedisCluster, Sentinel\n"
        "print(RedisCluster.__module__, Sentinel.__module__, hasattr(redis.asyncio, 'nope'))\n"
    )
    submodule_first = python_lines(
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n"
        "from redis.asyncio.sentinel import Sentinel\n"  # imports the client, which imports
        "from redis.asyncio.cluster import RedisCluster\n"  # its siblings from the package
        "import redis.asyncio\n"
        "print(redis.asyncio.Sentinel is Sentinel, redis.asyncio.RedisCluster is RedisCluster)\n"
    )

    assert lines == [
        "False",
        "redis.asyncio.client True",
        "redis.asyncio.cluster redis.asyncio.sentinel False",
    ]
    assert submodule_first == ["True True"]


def test_importlib_metadata_is_imported_at_its_first_use() -> None:
    lines = python_lines(
        "import sys\n"
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n"
        "import foundry.entrypoints.cli.work\n"
        "print('email' in sys.modules, 'zipfile' in sys.modules)\n"
        "import importlib.metadata\n"
        "import redis\n"
        "print(importlib.metadata.version('redis') == redis.__version__)\n"
        "from importlib.metadata import PackageNotFoundError, version\n"
        "print(issubclass(PackageNotFoundError, ModuleNotFoundError), 'email' in sys.modules)\n"
    )

    assert lines == ["False False", "True", "True True"]
