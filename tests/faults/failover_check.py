"""The oracle's view of a failover: how far the replica had caught up when the master died.

``ReplicationProbe`` writes to the master and waits for its replica all along, so the ledger
knows the last moment the replica held every write. ``check_failover`` allows exactly what that
leaves open: jobs acknowledged after that moment (and before the promotion) may be lost, and a
job claimed then may run again as the same attempt (a claim waits for no replica).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import redis

from foundry.ports import QueuePort
from tests.faults.checker import Expectations, Report
from tests.faults.harness import Rig
from tests.faults.ledger import Ledger
from tests.redis_server import RedisServer

#: How often the probe checks that the replica holds the master's writes.
PROBE_EVERY_S = 0.05


class ReplicationProbe:
    """Until stopped: a write of ``key`` on the master, then ``WAIT 1``; each answered one is
    ledgered as ``replicated`` at the time its write was sent (the replica then held every
    write the master had applied before it)."""

    def __init__(self, ledger: Ledger, master: RedisServer, key: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ledger, master, key), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (before the master is killed: a restarted one is not the same)."""
        self._stop.set()
        self._thread.join()

    def _run(self, ledger: Ledger, master: RedisServer, key: str) -> None:
        with master.client() as client:
            while not self._stop.wait(PROBE_EVERY_S):
                sent = time.time()
                try:
                    client.set(key, sent)
                    if client.wait(1, 1000) >= 1:
                        ledger.record("replicated", t=sent)
                except redis.RedisError:
                    return


def check_failover(
    rig: Rig, queue: QueuePort, expect: Expectations, context: str, *, report_lag: float = 0.0
) -> Report:
    """What the master held and the replica had not yet received is gone: jobs acknowledged
    after the probe last saw the replica hold everything (and before the promotion) may be
    lost (none with the WAIT), and a job claimed then may run again as the same attempt (a
    claim waits for no replica). So may a job held ahead that started up to ``report_lag``
    seconds before that moment: its start is reported later (with its worker's next claim or
    renew, or its completion), in a write the master may have taken down with it or never got.
    Any other problem fails; the counts are printed."""
    report = rig.report(queue, expect)
    events = rig.ledger.events()
    held = [event["t"] for event in events if event["ev"] == "replicated"]
    assert held, "the probe never saw the replica hold the master's writes"
    killed = next(event["t"] for event in events if event.get("kill"))
    window = (max(held), next(event["t"] for event in events if event.get("promoted")))
    acked = {event["job"]: event["t"] for event in events if event["ev"] == "enqueued"}
    outside = [job for job in report.lost if not window[0] <= acked[job] <= window[1]]
    reclaimed = _reclaimed(rig, queue, events, (window[0] - report_lag, window[1]))
    print(
        f"  {len(report.lost)} acknowledged job(s) lost, {len(reclaimed)} claim(s) lost; the "
        f"replica last confirmed holding every write {killed - window[0]:.3f} s before the kill"
    )
    assert not outside, (
        f"{len(outside)} lost job(s) acknowledged outside the replication lag window "
        f"({context}); the first: {outside[:10]}"
    )
    explained = {*report.lost, *reclaimed}
    unexplained = [p for p in report.problems if not any(f"job {j} " in p for j in explained)]
    assert not unexplained, f"{unexplained}; files kept in {rig.dir}"
    return report


def _reclaimed(
    rig: Rig, queue: QueuePort, events: list[dict[str, Any]], window: tuple[float, float]
) -> set[str]:
    """Jobs that started more often than their attempts say, one of the starts within
    ``window``: the claim (or the start's report) the master wrote then never reached the
    replica, so the promoted one handed the job out again as the same attempt."""
    starts: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if event["ev"] == "start":
            starts[event["job"]].append(event["t"])
    found = set()
    for job, times in starts.items():
        if len(times) > 1 and any(window[0] <= t <= window[1] for t in times):
            record = queue.get(job, rig.queue_name)
            if record is not None and record.attempts < len(times):
                found.add(job)
    return found
