"""The startup self-check ``foundry check`` and ``foundry work`` run against a Redis: version,
eviction policy and persistence, and (for the queue) the Lua library loaded."""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple, cast

import redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from foundry.adapters.redis.cluster import is_cluster
from foundry.adapters.redis.connection import describe
from foundry.adapters.redis.errors import guard, refused
from foundry.adapters.redis.runner import FunctionRunner, call
from foundry.domain import ConfigurationError, QueueUnavailable

log = logging.getLogger(__name__)

MIN_VERSION = (7, 0)

#: Whose data a Redis holds, for what its warnings say is at risk.
Serving = Literal["queue", "cache"]


class RedisReport(NamedTuple):
    """What the self-check found; ``warnings`` lists what an operator should fix (a named
    tuple: a fifth of an attrs class's cost to define, and every worker defines it)."""

    version: str
    maxmemory_policy: str
    aof_enabled: bool
    rdb_save: str
    warnings: tuple[str, ...] = ()
    #: Where the data lives: the server's role and replicas, and the Sentinel that names it.
    topology: str = "unknown"
    #: Replicas connected to the server (``None`` when INFO could not be read).
    replicas: int | None = None
    #: Its ``min-replicas-to-write`` (``None`` when CONFIG GET was refused).
    min_replicas: int | None = None


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
    """INFO server, memory, persistence and replication, and the save and
    min-replicas-to-write settings (in ``info``), in one round trip; and the INFO sections
    this user may not read."""
    pipe = client.pipeline(transaction=False)
    sections = ("server", "memory", "persistence", "replication")
    for section in sections:
        pipe.info(section)
    pipe.config_get("save")
    pipe.config_get("min-replicas-to-write")
    *replies, save, min_replicas = pipe.execute(raise_on_error=False)
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
    if isinstance(min_replicas, dict):
        info |= min_replicas
    return info, _save_setting(save), denied


def inspect_redis(client: redis.Redis, *, serving: Serving = "queue") -> RedisReport:
    """Read version, eviction policy and persistence; raises ``ConfigurationError`` for
    Redis < 7.0 or a refused password or certificate, and ``QueueUnavailable`` if Redis
    cannot be reached. What this user may not read is reported as a warning, not an error.
    On Redis Cluster: every master, and the cluster's nodes and slot coverage. ``serving``
    (``"queue"`` or ``"cache"``) says whose data an eviction warning speaks of."""
    if is_cluster(client):
        return _inspect_cluster(cast(RedisCluster, client), serving)
    return _inspect_server(client, in_cluster=False, serving=serving)


def _inspect_server(client: redis.Redis, *, in_cluster: bool, serving: Serving) -> RedisReport:
    """``inspect_redis`` of one server (a cluster's master when ``in_cluster``)."""
    try:
        info, save, denied = _read(client)
    except redis.RedisError as error:
        where = describe(client)
        raise refused(error, where) or QueueUnavailable(
            f"cannot reach Redis at {where} for the self-check: {error}"
        ) from error
    if not in_cluster:
        _refuse_mode(str(info.get("redis_mode", "standalone")), describe(client))
    version = str(info.get("redis_version", "unknown"))
    if version != "unknown" and _version_tuple(version) < MIN_VERSION:
        raise ConfigurationError(
            f"Redis {version} is too old: Foundry needs Redis >= 7.0 (functions it relies on: "
            "ZPOPMIN with counts, effects replication of scripts); upgrade the server at REDIS_URL"
        )
    policy = str(info.get("maxmemory_policy", "unknown"))
    aof = bool(int(info.get("aof_enabled", 0)))
    if denied:
        warnings = _uninspected(denied)
    else:
        warnings = _warnings(policy, aof, save, serving) + _replication_warnings(client, info)
    replicas = None if denied else int(info.get("connected_slaves", 0))
    guard = str(info.get("min-replicas-to-write", ""))
    return RedisReport(
        version,
        policy,
        aof,
        save,
        warnings,
        _topology(client, info),
        replicas,
        int(guard) if guard.isdigit() else None,
    )


#: What a plain (or Sentinel's) URL that reaches a server of another mode should be.
_WRONG_MODE = {
    "cluster": "{where} is a node of a Redis Cluster: use redis+cluster://host:port"
    "[,host:port...] (docs/redis-cluster.md)",
    "sentinel": "{where} is a Sentinel, not a Redis server: use redis+sentinel://host:26379"
    "[,host:port...]/<master name> (docs/redis-topologies.md)",
}


def _refuse_mode(mode: str, where: str) -> None:
    """``ConfigurationError`` if the server is a cluster's node or a Sentinel."""
    if mode in _WRONG_MODE:
        raise ConfigurationError(_WRONG_MODE[mode].format(where=where))


def _inspect_cluster(cluster: RedisCluster, serving: Serving) -> RedisReport:
    """``inspect_redis`` of each master, joined: the oldest version, each setting (or the
    masters that differ), every master's warnings naming it, and what the cluster risks."""
    where = describe(cast(redis.Redis, cluster))
    try:
        masters = cluster.get_primaries()  # type: ignore[no-untyped-call]
        replicas = cluster.get_replicas()  # type: ignore[no-untyped-call]
        reports = [
            (node.name, _inspect_server(node.redis_connection, in_cluster=True, serving=serving))
            for node in masters
        ]
        state = _cluster_info(call(masters[0].redis_connection, "CLUSTER", "INFO"))
    except redis.RedisError as error:
        raise refused(error, where) or QueueUnavailable(
            f"cannot reach Redis Cluster at {where} for the self-check: {error}"
        ) from error
    served = int(state.get("cluster_slots_ok", 0))
    topology = (
        f"Redis Cluster: {len(masters)} master{'' if len(masters) == 1 else 's'}, "
        f"{len(replicas)} replica{'' if len(replicas) == 1 else 's'}, {served}/16384 slots "
        f"served, state {state.get('cluster_state', 'unknown')}"
    )
    counts = [report.replicas for _, report in reports]
    fewest = None if None in counts else min(c for c in counts if c is not None)
    return RedisReport(
        version=min((r.version for _, r in reports), key=_version_tuple),
        maxmemory_policy=_joined([(name, r.maxmemory_policy) for name, r in reports]),
        aof_enabled=all(r.aof_enabled for _, r in reports),
        rdb_save=_joined([(name, r.rdb_save) for name, r in reports]),
        warnings=_cluster_warnings(reports, state),
        topology=topology,
        replicas=fewest,
    )


def _cluster_info(raw: Any) -> dict[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _joined(values: list[tuple[str, str]]) -> str:
    """One value when every master has it, else each master's."""
    if len({value for _, value in values}) == 1:
        return values[0][1]
    return "; ".join(f"{name}: {value}" for name, value in values)


def _cluster_warnings(
    reports: list[tuple[str, RedisReport]], state: dict[str, str]
) -> tuple[str, ...]:
    found: dict[str, list[str]] = {}
    for name, report in reports:
        for warning in report.warnings:
            found.setdefault(warning, []).append(name)
    warnings = [f"{warning} (on {', '.join(names)})" for warning, names in found.items()]
    served = int(state.get("cluster_slots_ok", 0))
    if served < 16384 or state.get("cluster_state") != "ok":
        warnings.append(
            f"the cluster serves {served} of 16384 slots (state "
            f"{state.get('cluster_state', 'unknown')}): the queues and cache keys of the "
            "others cannot be used; bring back their master (or fail over to its replica), or "
            "assign the slots with redis-cli --cluster fix <host:port>"
        )
    unguarded = [name for name, r in reports if r.replicas and r.min_replicas == 0]
    if unguarded:
        warnings.append(f"{_UNGUARDED} (on {', '.join(unguarded)})")
    lone = [name for name, report in reports if report.replicas == 0]
    if lone:
        warnings.append(
            f"{len(lone)} of {len(reports)} masters have no replica ({', '.join(lone)}): the "
            "loss of one loses the jobs of its slots and stops the cluster; run a replica "
            "per master"
        )
    return tuple(warnings)


def _topology(client: redis.Redis, info: dict[str, Any]) -> str:
    replicas = int(info.get("connected_slaves", 0))
    where = f"{info.get('role', 'unknown')}, {replicas} replica{'' if replicas == 1 else 's'}"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        count = len(pool.sentinel_manager.sentinels)
        return f"Sentinel master {pool.service_name!r} ({count} sentinels): {where}"
    return where


def _replication_warnings(client: redis.Redis, info: dict[str, Any]) -> tuple[str, ...]:
    """What a Sentinel failover may lose: a master with nothing to promote, or one that keeps
    acknowledging writes while cut off from its replicas."""
    if not isinstance(client.connection_pool, SentinelConnectionPool):
        return ()  # one server chosen on purpose: nothing fails over
    found = []
    if int(info.get("connected_slaves", 0)) == 0:
        found.append(
            "no replica is connected to the master: a failover has nothing to promote and the "
            "master's loss loses every job; run at least one replica"
        )
    if str(info.get("min-replicas-to-write", "")) == "0":
        found.append(_UNGUARDED)
    return tuple(found)


_UNGUARDED = (
    "min-replicas-to-write is 0: a master cut off from its replicas keeps acknowledging jobs "
    "that the failover then discards; set min-replicas-to-write 1 on every server that may "
    "become master"
)


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
    "no replica is connected": "a replica of the master (replicaof)",
    "min-replicas-to-write": "min-replicas-to-write 1",
    "REDIS_WAIT_REPLICAS": "REDIS_WAIT_REPLICAS at most the replicas connected",
    "slots (state": "every slot served (redis-cli --cluster fix <host:port>)",
    "have no replica": "a replica per cluster master (redis-cli --cluster add-node ... "
    "--cluster-slave)",
}


def fixes(report: RedisReport) -> list[str]:
    """What an operator sets so that ``report`` has no warning left."""
    return [fix for start, fix in FIXES.items() if any(start in w for w in report.warnings)]


#: What an evicting ``maxmemory-policy`` costs each user of a Redis, and the fix.
_EVICTION = {
    "queue": "maxmemory-policy is {policy!r}: Redis may evict jobs under memory pressure "
    "(silent job loss); set maxmemory-policy noeviction",
    # volatile-* is no way out: a lock and an effect record carry an expiry (their ttl).
    "cache": "maxmemory-policy {policy!r} lets Redis evict the cache's held locks and effect "
    "records under memory pressure, not only its values (a second owner takes a held lock; a "
    "recorded effect runs again); set maxmemory-policy noeviction (a full Redis then refuses "
    "writes instead; volatile-* policies evict locks too, as they expire)",
}


def _warnings(policy: str, aof: bool, save: str, serving: Serving) -> tuple[str, ...]:
    found = []
    if policy != "noeviction":
        found.append(_EVICTION[serving].format(policy=policy))
    if not aof:
        found.append(
            f"appendonly is off (RDB save: {save}): jobs, and the cache's held locks, effect "
            "records and values, written since the last snapshot are lost if Redis stops; set "
            "appendonly yes for durability"
        )
    return tuple(found)


def log_report(report: RedisReport) -> None:
    """Log the report: facts at info level, each warning loudly."""
    log.info(
        "Redis %s (%s): maxmemory-policy %s, appendonly %s, save %s",
        report.version,
        report.topology,
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
    extra = [_other_releases(others)] if others else []
    wanted = runner.durability.replicas
    if wanted and report.replicas is not None and report.replicas < wanted:
        extra.append(
            f"REDIS_WAIT_REPLICAS={wanted} but the master has {report.replicas} replica(s) "
            "connected: "
            "every enqueue and completion will fail until enough replicas are; lower it or "
            "add replicas"
        )
    return report._replace(warnings=(*report.warnings, *extra)) if extra else report


def _other_releases(names: list[str]) -> str:
    return (
        f"{len(names)} Foundry function librar{'y' if len(names) == 1 else 'ies'} of other "
        f"releases stay loaded ({', '.join(names)}); once no worker of that release runs, "
        "free it with FUNCTION DELETE <name> (a worker that still needs it loads it again)"
    )
