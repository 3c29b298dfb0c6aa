"""``redis+sentinel://`` URLs: read into a target, refused with the fix, shown without secrets."""

from __future__ import annotations

import pytest

from foundry.adapters.redis import sentinel
from foundry.adapters.redis.connection import RedisSettings, connect, describe, mask_url
from foundry.domain import ConfigurationError
from foundry.entrypoints.settings import Settings


def test_a_sentinel_url_names_every_sentinel_the_master_and_the_database() -> None:
    target = sentinel.parse("redis+sentinel://app:pw@10.0.0.1:26380,sentinel-b,[::1]:7/orders/3")

    assert target.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 7))
    assert (target.master, target.db, target.tls) == ("orders", 3, False)
    assert (target.username, target.password) == ("app", "pw")


def test_sentinel_logins_and_tls_options_come_from_the_query() -> None:
    url = "rediss+sentinel://:pw@s1:26379/m?sentinel_password=sp&ssl_ca_certs=/ca.pem"

    target = sentinel.parse(url)

    assert target.tls
    assert (target.username, target.password) == (None, "pw")
    assert (target.sentinel_username, target.sentinel_password) == (None, "sp")
    assert target.options == (("ssl_ca_certs", "/ca.pem"),)
    assert target.db == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "name the master the sentinels monitor"),
        ("redis+sentinel://s1:26379/", "name the master the sentinels monitor"),
        ("redis+sentinel://s1:26379/m/x", "database after the master name must be a number"),
        ("redis+sentinel://s1:port/m", "give each sentinel as host:port"),
        ("redis+sentinel://s1:26379,,s2/m", "give each sentinel as host:port"),
        ("redis+sentinel://s1:99999/m", "give each sentinel as host:port"),
        ("sentinel://s1:26379/m", r"redis\+sentinel://host:26379"),
        ("redis+sentinel://s1/m?ssl_ca_certs=/ca.pem", r"ssl_ca_certs= is an option of TLS"),
    ],
)
def test_a_bad_sentinel_url_is_refused_naming_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        Settings.from_env({"REDIS_URL": url})

    assert "REDIS_URL" in str(raised.value)


def test_both_passwords_of_a_sentinel_url_are_masked() -> None:
    url = "redis+sentinel://app:hunter2@s1:26379,s2:26379/m/0?sentinel_password=swordfish&x=1"

    shown = Settings.from_env({"REDIS_URL": url}).describe()["REDIS_URL"]

    assert shown == mask_url(url)
    assert "hunter2" not in shown
    assert "swordfish" not in shown
    assert shown.startswith("redis+sentinel://app:********@s1:26379,s2:26379/m/0?")
    assert "sentinel_password=********&x=1" in shown


def test_a_sentinel_client_describes_itself_with_its_sentinels_and_master() -> None:
    url = "rediss+sentinel://app:hunter2@s1:26379,s2:26380/orders/2"

    client = connect(RedisSettings(url=url))  # lazy: nothing is reached

    assert describe(client) == "rediss+sentinel://app:********@s1:26379,s2:26380/orders/2"


def test_redis_db_and_redis_password_override_the_sentinel_urls() -> None:
    settings = Settings(redis_url="redis+sentinel://:pw@s1/m/2", redis_db=5, redis_password="x")

    kwargs = connect(settings.queue_redis()).connection_pool.connection_kwargs

    assert (kwargs["db"], kwargs["password"]) == (5, "x")
