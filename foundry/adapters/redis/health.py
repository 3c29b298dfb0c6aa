"""The startup self-check ``foundry check`` and ``foundry work`` run against a Redis: version,
eviction policy and persistence, and (for the queue) the Lua library loaded."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import redis

from foundry.adapters.redis.connection import describe
from foundry.adapters.redis.errors import guard, refused
from foundry.adapters.redis.runner import FunctionRunner
from foundry.domain import ConfigurationError, QueueUnavailable

log = logging.getLogger(__name__)

MIN_VERSION = (7, 0)


@attrs.frozen
class RedisReport:
    """What the self-check found; ``warnings`` lists what an operator should fix."""

    version: str
    maxmemory_policy: str
    aof_enabled: bool
    rdb_save: str
    warnings: tuple[str, ...] = ()


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _save_setting(reply: object) -> str:
    if _refused_command(reply):  # CONFIG is often disabled on managed Redis, or by an ACL
        return "unknown (CONFIG GET refused)"
    if isinstance(reply, Exception):
        raise reply
    assert isinstance(reply, dict)
    return str(reply.get("save", "")) or "off"


def _refused_command(reply: object) -> bool:
    """A reply saying this user may not run the command (ACL), or that it is disabled."""
    return isinstance(reply, redis.ResponseError)


def _read(client: redis.Redis) -> tuple[dict[str, Any], str, list[str]]:
    """INFO server, memory and persistence, and the save setting, in one round trip; and
    the INFO sections this user may not read."""
    pipe = client.pipeline(transaction=False)
    sections = ("server", "memory", "persistence")
    for section in sections:
        pipe.info(section)
    pipe.config_get("save")
    *replies, save = pipe.execute(raise_on_error=False)
    info: dict[str, Any] = {}
    denied: list[str] = []
    for reply in replies:
        if _refused_command(reply):
            if not denied:  # one reason for every section
                denied.append(f"INFO ({reply})")
        elif isinstance(reply, Exception):
            raise reply
        else:
            info |= reply
    return info, _save_setting(save), denied


def inspect_redis(client: redis.Redis) -> RedisReport:
    """Read version, eviction policy and persistence; raises ``ConfigurationError`` for
    Redis < 7.0 or a refused password or certificate, and ``QueueUnavailable`` if Redis
    cannot be reached. What this user may not read is reported as a warning, not an error."""
    try:
        info, save, denied = _read(client)
    except redis.RedisError as error:
        where = describe(client)
        raise refused(error, where) or QueueUnavailable(
            f"cannot reach Redis at {where} for the self-check: {error}"
        ) from error
    version = str(info.get("redis_version", "unknown"))
    if version != "unknown" and _version_tuple(version) < MIN_VERSION:
        raise ConfigurationError(
            f"Redis {version} is too old: Foundry needs Redis >= 7.0 (functions it relies on: "
            "ZPOPMIN with counts, effects replication of scripts); upgrade the server at REDIS_URL"
        )
    policy = str(info.get("maxmemory_policy", "unknown"))
    aof = bool(int(info.get("aof_enabled", 0)))
    warnings = _warnings(policy, aof, save) if not denied else _uninspected(denied)
    return RedisReport(version, policy, aof, save, warnings)


def _uninspected(denied: list[str]) -> tuple[str, ...]:
    return (
        f"could not inspect Redis: this user may not run {'; '.join(denied)}; so eviction and "
        "persistence were not checked: make sure maxmemory-policy is noeviction and appendonly "
        "is yes (ask your provider on a managed Redis)",
    )


#: What to set for each warning, in one line for ``foundry check --strict``.
FIXES = {
    "maxmemory-policy": "maxmemory-policy noeviction",
    "appendonly": "appendonly yes (CONFIG SET appendonly yes, and in redis.conf)",
    "could not inspect": "a user that may run INFO, or --strict off where INFO is denied",
    "Foundry function librar": "FUNCTION DELETE for each library named",
}


def fixes(report: RedisReport) -> list[str]:
    """What an operator sets so that ``report`` has no warning left."""
    return [fix for start, fix in FIXES.items() if any(start in w for w in report.warnings)]


def _warnings(policy: str, aof: bool, save: str) -> tuple[str, ...]:
    found = []
    if policy != "noeviction":
        found.append(
            f"maxmemory-policy is {policy!r}: Redis may evict jobs under memory pressure "
            "(silent job loss); set maxmemory-policy noeviction"
        )
    if not aof:
        found.append(
            f"appendonly is off (RDB save: {save}): jobs acknowledged since the last snapshot "
            "are lost if Redis stops; set appendonly yes for durability"
        )
    return tuple(found)


def log_report(report: RedisReport) -> None:
    """Log the report: facts at info level, each warning loudly."""
    log.info(
        "Redis %s: maxmemory-policy %s, appendonly %s, save %s",
        report.version,
        report.maxmemory_policy,
        "yes" if report.aof_enabled else "no",
        report.rdb_save,
    )
    for warning in report.warnings:
        log.warning("REDIS SELF-CHECK: %s", warning)


def check(runner: FunctionRunner) -> RedisReport:
    """The queue's self-check: ``inspect_redis``, then the library loaded, with a warning
    naming the libraries other releases left. Not logged: the caller shows it once, as a log
    (``log_report``, a worker) or as a table (``foundry check``)."""
    report = inspect_redis(runner.client)
    with guard("loading the Lua library"):
        others = runner.load()
    if others:
        report = attrs.evolve(report, warnings=(*report.warnings, _other_releases(others)))
    return report


def _other_releases(names: list[str]) -> str:
    return (
        f"{len(names)} Foundry function librar{'y' if len(names) == 1 else 'ies'} of other "
        f"releases stay loaded ({', '.join(names)}); once no worker of that release runs, "
        "free it with FUNCTION DELETE <name> (a worker that still needs it loads it again)"
    )
