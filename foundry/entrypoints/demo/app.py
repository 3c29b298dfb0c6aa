"""The demo app: CPU-bound handlers, a flaky one that succeeds on retry, one that never can.

Load it like any app: ``foundry work --app foundry.entrypoints.demo.app:registry``.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

from foundry.application.registry import JobRegistry
from foundry.domain import Fixed, PermanentFailure, RetryPolicy

DEMO_QUEUE = "demo"

registry = JobRegistry()


@registry.job(name="demo.count_primes", queue=DEMO_QUEUE)
def count_primes(limit: int) -> int:
    """How many primes are below ``limit`` (a sieve: about 10 ms for 100,000)."""
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for number in range(2, int(limit**0.5) + 1):
        if sieve[number]:
            sieve[number * number :: number] = bytes(len(range(number * number, limit, number)))
    return sum(sieve)


@registry.job(name="demo.hash_chain", queue=DEMO_QUEUE)
def hash_chain(seed: str, rounds: int) -> str:
    """SHA-256 applied ``rounds`` times to ``seed``; the final digest in hex."""
    digest = seed.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


class UpstreamHiccup(ConnectionError):
    """A transient failure, the kind a retry fixes."""


@registry.job(
    name="demo.flaky",
    queue=DEMO_QUEUE,
    retry=RetryPolicy(max_attempts=4, backoff=Fixed(timedelta(milliseconds=200))),
)
def flaky(ledger: str, key: str, failures: int) -> str:
    """Fail the first ``failures`` attempts, then succeed.

    Attempts are counted in a file under ``ledger`` because each attempt may run in another
    process (appending one byte is atomic, so concurrent attempts cannot miscount).
    """
    path = Path(ledger) / key
    path.parent.mkdir(parents=True, exist_ok=True)  # a leftover job may outlive its demo's dir
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, b".")
    finally:
        os.close(descriptor)
    attempt = path.stat().st_size
    if attempt <= failures:
        raise UpstreamHiccup(f"upstream hiccup on attempt {attempt} (succeeds after {failures})")
    return f"ok after {attempt} attempts"


@registry.job(name="demo.charge_cancelled_order", queue=DEMO_QUEUE)
def charge_cancelled_order(order_id: int) -> None:
    """Always fails for good: no retry can charge a cancelled order."""
    raise PermanentFailure(f"order {order_id} was cancelled; nothing to charge")
