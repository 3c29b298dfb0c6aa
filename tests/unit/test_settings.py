from datetime import timedelta

import pytest

from foundry.domain import ConfigurationError
from foundry.entrypoints.settings import Driver, Settings

BAD_VALUES = [
    ("REDIS_URL", "http://localhost:6379", "redis://"),
    ("REDIS_URL", "redis://127.0.0.1:6379/abc", "database in the path must be a number"),
    ("REDIS_URL", "redis://127.0.0.1:6379/5x", "database in the path must be a number"),
    ("REDIS_URL", "redis://127.0.0.1:6379/5 extra", "database in the path must be a number"),
    ("REDIS_URL", "redis://127.0.0.1:6379/0?db=two", "db= must be a number"),
    ("REDIS_URL", "redis://127.0.0.1:99999/0", "port must be a number from 1 to 65535"),
    ("REDIS_URL", "redis://127.0.0.1:sixty/0", "port must be a number from 1 to 65535"),
    ("REDIS_URL", "redis://127.0.0.1:0/0", "port must be a number from 1 to 65535"),
    ("REDIS_URL", "redis://[no-closing-bracket:6379/0", "Invalid IPv6 URL"),
    ("REDIS_DB", "two", "whole number"),
    ("REDIS_DB", "-1", "0 or more"),
    ("REDIS_POOL_SIZE", "0", "from 1 to 10000"),
    ("REDIS_POOL_SIZE", "lots", "whole number"),
    ("REDIS_CONNECT_TIMEOUT", "soon", "number of seconds"),
    ("REDIS_CONNECT_TIMEOUT", "0", "greater than 0"),
    ("REDIS_SOCKET_TIMEOUT", "later", "number of seconds"),
    ("REDIS_SOCKET_TIMEOUT", "-1", "greater than 0"),
    ("REDIS_CACHE_DB", "x", "whole number"),
    ("REDIS_QUEUE_DB", "1.5", "whole number"),
    ("REDIS_WAIT_REPLICAS", "-1", "from 0 (no waiting) to 100"),
    ("REDIS_WAIT_REPLICAS", "all", "whole number"),
    ("CACHE_DRIVER", "memcached", "'memory', 'redis' or 'postgres'"),
    ("CACHE_PREFIX", "has space", "letters, digits"),
    ("QUEUE_DRIVER", "sqs", "'memory', 'redis' or 'postgres'"),
    ("QUEUE_PREFIX", "{tag}", "no spaces or braces"),
    ("QUEUE_TIMEOUT", "-5", "greater than 0"),
    ("DATABASE_URL", "mysql://db.example/app", "postgresql://"),
    ("DATABASE_URL", "postgresql://db.example:port/app", "port must be a number"),
    ("DATABASE_POOL_SIZE", "0", "from 1 to 10000"),
    ("DATABASE_SCHEMA", "Has-Dash", "lower-case letters"),
    ("DATABASE_PREPARED_STATEMENTS", "sometimes", "true or false"),
    ("QUEUE_DRIVER", "postgres", "needs DATABASE_URL"),
    ("CACHE_DRIVER", "postgres", "needs DATABASE_URL"),
]


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.queue_driver is Driver.MEMORY
    assert settings.cache_driver is Driver.MEMORY
    assert settings.queue_timeout == timedelta(seconds=30)


def test_every_variable_is_read() -> None:
    environ = {
        "REDIS_URL": "rediss://cache.example:6380/0",
        "REDIS_DB": "3",
        "REDIS_PASSWORD": "s3cret",
        "REDIS_POOL_SIZE": "40",
        "REDIS_CONNECT_TIMEOUT": "1.5",
        "REDIS_SOCKET_TIMEOUT": "7",
        "REDIS_CACHE_DB": "4",
        "REDIS_QUEUE_DB": "5",
        "REDIS_WAIT_REPLICAS": "2",
        "CACHE_DRIVER": "redis",
        "CACHE_PREFIX": "app_cache",
        "QUEUE_DRIVER": "REDIS",
        "QUEUE_PREFIX": "app",
        "QUEUE_TIMEOUT": "90",
    }

    settings = Settings.from_env(environ)

    assert settings == Settings(
        redis_url="rediss://cache.example:6380/0",
        redis_db=3,
        redis_password="s3cret",
        redis_pool_size=40,
        redis_connect_timeout=timedelta(seconds=1.5),
        redis_socket_timeout=timedelta(seconds=7),
        redis_cache_db=4,
        redis_queue_db=5,
        redis_wait_replicas=2,
        cache_driver=Driver.REDIS,
        cache_prefix="app_cache",
        queue_driver=Driver.REDIS,
        queue_prefix="app",
        queue_timeout=timedelta(seconds=90),
    )


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"QUEUE_DRIVER": "", "REDIS_DB": "  "})

    assert settings == Settings()


@pytest.mark.parametrize(("variable", "value", "hint"), BAD_VALUES)
def test_a_bad_value_names_the_variable_and_what_is_allowed(
    variable: str, value: str, hint: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({variable: value})

    assert variable in str(raised.value)
    assert hint in str(raised.value)


def test_a_redis_cache_prefix_inside_another_namespace_is_refused_at_startup() -> None:
    environ = {"REDIS_URL": "redis://127.0.0.1:6379/0", "CACHE_PREFIX": "shop:v"}

    with pytest.raises(ConfigurationError, match=r"CACHE_PREFIX.*'v'.*'shop'"):
        Settings.from_env(environ)

    assert Settings.from_env(
        {**environ, "CACHE_DRIVER": "postgres", "DATABASE_URL": "postgresql://db/app"}
    )


def test_a_redis_queue_prefix_among_the_cache_s_keys_is_refused_at_startup() -> None:
    environ = {"REDIS_URL": "redis://127.0.0.1:6379/0", "CACHE_PREFIX": "shop"}

    with pytest.raises(ConfigurationError, match=r"QUEUE_PREFIX.*'t'.*clear\(\)"):
        Settings.from_env({**environ, "QUEUE_PREFIX": "shop:t:jobs"})

    assert Settings.from_env({**environ, "QUEUE_PREFIX": "shop:jobs"})
    assert Settings.from_env({**environ, "QUEUE_PREFIX": "shop"})


def test_the_queue_and_cache_databases_override_the_shared_one() -> None:
    settings = Settings.from_env({"REDIS_DB": "2", "REDIS_CACHE_DB": "7"})

    assert settings.queue_redis().db == 2
    assert settings.cache_redis().db == 7


def test_redis_settings_carry_the_password_pool_and_timeout() -> None:
    settings = Settings.from_env(
        {"REDIS_PASSWORD": "pw", "REDIS_POOL_SIZE": "3", "REDIS_CONNECT_TIMEOUT": "4"}
    )

    redis = settings.queue_redis()

    assert (redis.password, redis.pool_size) == ("pw", 3)
    assert redis.connect_timeout == timedelta(seconds=4)


def test_the_queue_clients_socket_timeout_is_at_most_a_third_of_the_lease() -> None:
    short = Settings.from_env({"QUEUE_TIMEOUT": "2", "REDIS_SOCKET_TIMEOUT": "5"})
    long = Settings.from_env({"QUEUE_TIMEOUT": "60", "REDIS_SOCKET_TIMEOUT": "4"})

    assert short.queue_redis().socket_timeout == timedelta(seconds=2) / 3
    assert short.cache_redis().socket_timeout == timedelta(seconds=5)
    assert long.queue_redis().socket_timeout == timedelta(seconds=4)


def test_describe_hides_the_password() -> None:
    shown = Settings.from_env({"REDIS_PASSWORD": "hunter2"}).describe()

    assert shown["REDIS_PASSWORD"] == "********"
    assert "hunter2" not in repr(Settings.from_env({"REDIS_PASSWORD": "hunter2"}))
    assert set(shown) >= {"REDIS_URL", "QUEUE_DRIVER", "CACHE_PREFIX", "QUEUE_TIMEOUT"}


def test_a_password_in_the_url_is_masked_when_shown() -> None:
    settings = Settings.from_env({"REDIS_URL": "rediss://app:hunter2@cache.example:6380/1"})

    shown = settings.describe()["REDIS_URL"]

    assert shown == "rediss://app:********@cache.example:6380/1"
    assert "hunter2" not in repr(settings)
    assert settings.queue_redis().url == "rediss://app:hunter2@cache.example:6380/1"


def test_wait_replicas_waits_at_most_half_the_queue_clients_reply_timeout() -> None:
    settings = Settings.from_env({"REDIS_WAIT_REPLICAS": "1", "QUEUE_TIMEOUT": "6"})

    durability = settings.queue_durability()

    assert durability.replicas == 1
    assert durability.timeout == settings.queue_timing().reply_timeout / 2 == timedelta(seconds=1)
    assert Settings().queue_durability().wait_command() is None


def test_the_postgres_variables_are_read_and_the_password_is_masked() -> None:
    settings = Settings.from_env(
        {
            "QUEUE_DRIVER": "postgres",
            "DATABASE_URL": "postgresql://app:hunter2@db.example:5433/app",
            "DATABASE_POOL_SIZE": "4",
            "DATABASE_SCHEMA": "jobs_v2",
        }
    )

    postgres = settings.postgres()

    assert settings.queue_driver is Driver.POSTGRES
    assert settings.cache_driver is Driver.MEMORY
    assert (postgres.schema, postgres.pool_size) == ("jobs_v2", 4)
    assert postgres.url == "postgresql://app:hunter2@db.example:5433/app"
    assert settings.describe()["DATABASE_URL"] == "postgresql://app:********@db.example:5433/app"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in repr(postgres)


def test_a_database_url_alone_does_not_choose_postgres() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://db.example/app"})

    assert (settings.queue_driver, settings.cache_driver) == (Driver.MEMORY, Driver.MEMORY)
    assert settings.describe()["DATABASE_SCHEMA"] == "foundry"


BAD_FIELDS = [
    ("redis_url", "http://localhost:6379", "REDIS_URL", "redis://"),
    ("redis_url", 6379, "REDIS_URL", "expected a string"),
    ("redis_url", "redis://app:hunter2@[oops/0", "REDIS_URL", "Invalid IPv6 URL"),
    ("database_url", "postgresql://[oops/app", "DATABASE_URL", "Invalid IPv6 URL"),
    ("redis_db", "3", "REDIS_DB", "whole number"),
    ("redis_db", -1, "REDIS_DB", "0 or more"),
    ("redis_pool_size", 0, "REDIS_POOL_SIZE", "from 1 to 10000"),
    ("redis_wait_replicas", True, "REDIS_WAIT_REPLICAS", "whole number"),
    ("redis_connect_timeout", "2", "REDIS_CONNECT_TIMEOUT", "number of seconds"),
    ("redis_socket_timeout", float("nan"), "REDIS_SOCKET_TIMEOUT", "number of seconds"),
    ("queue_timeout", 0, "QUEUE_TIMEOUT", "greater than 0"),
    ("queue_timeout", timedelta(days=2), "QUEUE_TIMEOUT", "at most 86400"),
    ("queue_prefix", "", "QUEUE_PREFIX", "letters, digits"),
    ("cache_prefix", None, "CACHE_PREFIX", "expected a string"),
    ("queue_driver", "sqs", "QUEUE_DRIVER", "'memory', 'redis' or 'postgres'"),
    ("database_url", "mysql://db.example/app", "DATABASE_URL", "postgresql://"),
    ("database_pool_size", 2.5, "DATABASE_POOL_SIZE", "whole number"),
    ("database_schema", "Has-Dash", "DATABASE_SCHEMA", "lower-case letters"),
]


@pytest.mark.parametrize(("field", "value", "variable", "hint"), BAD_FIELDS)
def test_settings_made_in_code_are_checked_as_the_environment_is(
    field: str, value: object, variable: str, hint: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings(**{field: value})  # type: ignore[arg-type]

    assert f"{variable}=" in str(raised.value)
    assert hint in str(raised.value)


def test_durations_made_in_code_take_seconds_as_the_environment_does() -> None:
    in_seconds = Settings(queue_timeout=45, redis_connect_timeout=0.5, redis_socket_timeout=3)

    assert in_seconds == Settings.from_env(
        {"QUEUE_TIMEOUT": "45", "REDIS_CONNECT_TIMEOUT": "0.5", "REDIS_SOCKET_TIMEOUT": "3"}
    )
    assert in_seconds.queue_timeout == timedelta(seconds=45)


def test_a_refused_secret_is_not_shown() -> None:
    with pytest.raises(ConfigurationError) as password:
        Settings(redis_password=12345)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as url:
        Settings(redis_url="http://app:hunter2@cache.example:6379")

    assert "12345" not in str(password.value)
    assert "REDIS_PASSWORD=(hidden)" in str(password.value)
    assert "hunter2" not in str(url.value)


def test_a_url_puts_the_queue_and_the_cache_on_its_server_and_keeps_the_rest() -> None:
    base = Settings(queue_prefix="app", queue_timeout=60)

    redis = base.on("redis+sentinel://10.0.0.1:26379/main/0")
    postgres = base.on("postgresql://app@db.example/app")
    memory = Settings(redis_url="redis://10.0.0.1:6379/0").on("memory://")

    assert (redis.queue_driver, redis.cache_driver) == (Driver.REDIS, Driver.REDIS)
    assert redis.redis_url == "redis+sentinel://10.0.0.1:26379/main/0"
    assert (postgres.queue_driver, postgres.cache_driver) == (Driver.POSTGRES, Driver.POSTGRES)
    assert postgres.database_url == "postgresql://app@db.example/app"
    assert (memory.queue_driver, memory.cache_driver) == (Driver.MEMORY, Driver.MEMORY)
    assert (redis.queue_prefix, postgres.queue_timeout) == ("app", timedelta(seconds=60))


@pytest.mark.parametrize(("value", "prepared"), [("false", False), ("0", False), ("True", True)])
def test_database_prepared_statements_reaches_the_postgresql_settings(
    value: str, prepared: bool
) -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://db.example/app", "DATABASE_PREPARED_STATEMENTS": value}
    )

    assert settings.postgres().prepared_statements is prepared
    assert settings.postgres().prepare_threshold == (5 if prepared else None)


@pytest.mark.parametrize(
    ("environ", "shown"),
    [
        ({"QUEUE_TIMEOUT": "0"}, "QUEUE_TIMEOUT=0 is not valid"),
        ({"REDIS_CONNECT_TIMEOUT": "-1.5"}, "REDIS_CONNECT_TIMEOUT=-1.5 is not valid"),
        ({"QUEUE_TIMEOUT": "172800"}, "QUEUE_TIMEOUT=172800 is not valid"),
    ],
)
def test_a_bad_duration_is_shown_in_seconds_as_it_was_written(
    environ: dict[str, str], shown: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)

    assert shown in str(raised.value)
    assert "datetime" not in str(raised.value)
