"""``foundry stats`` on a Redis Cluster whose master holding the list of queues
(``{registry}``) or the workers (``{workers}``) is down: it shows the queues it can read,
says which part could not be read and why, and exits 3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis.crc import key_slot

import foundry
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import QueuesUnlisted, QueueUnavailable
from foundry.ports import WorkerInfo
from tests.backends import unique_prefix
from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup

pytestmark = pytest.mark.redis

REGISTRY, WORKERS = key_slot(b"registry"), key_slot(b"workers")


@pytest.fixture
def group() -> Iterator[RedisClusterGroup]:
    """A cluster of its own (one of its masters dies) whose surviving masters keep serving
    their slots however long it is down."""
    group = RedisClusterGroup()
    try:
        for node in group.nodes:
            with node.client() as probe:
                probe.config_set("cluster-require-full-coverage", "no")
        yield group
    finally:
        group.close()


def _move_empty_slot(group: RedisClusterGroup, slot: int, target: RedisServer) -> None:
    """Give ``slot`` (holding no key yet) to ``target``, as ``redis-cli --cluster reshard``
    does: importing and migrating marked, then the new owner told to every node."""
    source = group.owner(slot)
    with target.client() as probe:
        probe.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", group.node_id(source))
    with source.client() as probe:
        probe.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", group.node_id(target))
    for node in (target, source, *(n for n in group.nodes if n not in (target, source))):
        with node.client() as probe:
            probe.execute_command("CLUSTER", "SETSLOT", slot, "NODE", group.node_id(target))
    group.wait_until_ok()


def _queue_per_master(group: RedisClusterGroup) -> dict[int, str]:
    """A queue name on each master, by its port."""
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"queue-{i}"
        found.setdefault(group.owner(key_slot(name.encode())).port, name)
        if len(found) == len(group.nodes):
            return found
    raise AssertionError("no queue name found for every master")


def _fill(group: RedisClusterGroup, queues: list[str], served: list[str]) -> str:
    """A job in each of ``queues`` and a live worker serving ``served``; the prefix."""
    prefix = unique_prefix("q")
    queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=prefix)
    for name in queues:
        queue.enqueue(foundry.Job("noop", queue=name))
    now = queue.poll((), 0).now
    info = WorkerInfo("h:1:ab", "h", 1, tuple(served), 2, now, now)
    queue.heartbeat(info, timedelta(minutes=5))
    return prefix


def _stats(group: RedisClusterGroup, prefix: str, *args: str) -> tuple[int, dict[str, Any], str]:
    done = foundry_cli(
        "stats", "--json", *args, env={"REDIS_URL": group.url(), "QUEUE_PREFIX": prefix}
    )
    document = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, document, done.stderr


def test_with_the_list_of_queues_down_stats_reads_the_queues_named_and_says_what_is_unread(
    group: RedisClusterGroup,
) -> None:
    registries = group.owner(REGISTRY)
    queues = _queue_per_master(group)
    lost, *kept = [queues[registries.port], *(q for p, q in queues.items() if p != registries.port)]
    prefix = _fill(group, [lost, *kept], [lost, *kept])
    group.kill(registries)

    code, shown, said = _stats(group, prefix, *(f"--queue={name}" for name in (lost, *kept)))

    assert code == 3, said
    rows = {row["queue"]: row for row in shown["queues"]}
    assert [rows[name]["ready"] for name in kept] == [1, 1]
    assert "Connection refused" in rows[lost]["unreachable"]
    assert "Connection refused" in shown["queues_unlisted"]
    assert shown["workers"] is None
    assert "the list of queues could not be read" in said
    assert "the workers could not be read" in said


def test_with_the_list_of_queues_down_stats_shows_the_queues_the_live_workers_serve(
    group: RedisClusterGroup,
) -> None:
    registries = group.owner(REGISTRY)
    elsewhere = next(node for node in group.nodes if node is not registries)
    _move_empty_slot(group, WORKERS, elsewhere)
    queues = _queue_per_master(group)
    kept = [q for port, q in queues.items() if port != registries.port]
    prefix = _fill(group, list(queues.values()), kept)
    group.kill(registries)

    code, shown, said = _stats(group, prefix)
    table = foundry_cli("stats", env={"REDIS_URL": group.url(), "QUEUE_PREFIX": prefix})

    assert code == 3, said
    assert [(row["queue"], row["ready"]) for row in shown["queues"]] == [
        (q, 1) for q in sorted(kept)
    ]
    assert [worker["id"] for worker in shown["workers"]] == ["h:1:ab"]
    assert "the list of queues could not be read" in said
    assert table.returncode == 3, table.stderr
    assert "only the queues named with --queue, or else those found on the masters that" in (
        table.stdout
    )
    assert all(name in table.stdout for name in kept)
    assert "h:1:ab" in table.stdout
    assert "error: the list of queues could not be read" in table.stderr
    assert "Connection refused" in table.stderr


def test_with_the_workers_down_stats_shows_every_queue_and_says_the_workers_are_unread(
    group: RedisClusterGroup,
) -> None:
    registries = group.owner(REGISTRY)
    elsewhere = next(node for node in group.nodes if node is not registries)
    _move_empty_slot(group, WORKERS, elsewhere)
    queues = _queue_per_master(group)
    prefix = _fill(group, list(queues.values()), [])
    group.kill(elsewhere)

    code, shown, said = _stats(group, prefix)

    assert code == 3, said
    rows = {row["queue"]: row for row in shown["queues"]}
    assert "unreachable" in rows[queues[elsewhere.port]]
    assert [rows[q]["ready"] for p, q in queues.items() if p != elsewhere.port] == [1, 1]
    assert shown["workers"] is None
    assert "the workers could not be read" in said


def test_with_the_registry_and_workers_master_down_stats_finds_the_queues_on_the_others(
    group: RedisClusterGroup,
) -> None:
    registries = group.owner(REGISTRY)
    assert group.owner(WORKERS) is registries  # as a cluster made by redis-cli splits the slots
    queues = _queue_per_master(group)
    kept = sorted(q for port, q in queues.items() if port != registries.port)
    prefix = _fill(group, list(queues.values()), [])
    group.kill(registries)

    code, shown, said = _stats(group, prefix)
    table = foundry_cli("stats", env={"REDIS_URL": group.url(), "QUEUE_PREFIX": prefix})

    assert code == 3, said
    assert [(row["queue"], row["ready"]) for row in shown["queues"]] == [(q, 1) for q in kept]
    assert f"127.0.0.1:{registries.port}" in shown["queues_unlisted"]
    assert shown["workers"] is None
    assert f"not searched: 127.0.0.1:{registries.port}" in said
    assert table.returncode == 3, table.stderr
    assert all(name in table.stdout for name in kept)
    assert queues[registries.port] not in table.stdout
    assert "found on the masters that answered" in table.stdout


def _scans(nodes: list[RedisServer]) -> int:
    total = 0
    for node in nodes:
        with node.client() as probe:
            total += int(probe.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))
    return total


def test_a_reap_with_the_registry_master_down_is_an_outage_without_a_scan_for_queues(
    group: RedisClusterGroup,
) -> None:
    registries = group.owner(REGISTRY)
    others = [node for node in group.nodes if node is not registries]
    prefix = _fill(group, list(_queue_per_master(group).values()), [])
    queue = RedisQueue(connect(RedisSettings(url=group.url())), prefix=prefix)
    group.kill(registries)
    before = _scans(others)

    with pytest.raises(QueueUnavailable) as unavailable:
        queue.reap()

    assert not isinstance(unavailable.value, QueuesUnlisted)
    assert _scans(others) == before
