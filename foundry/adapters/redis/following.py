"""``FollowingPool``: the pool of a client of a Sentinel-managed master, which follows the
master the sentinels name while it is in use (``sentinel.py`` makes the client; the sync
runner reads the pool, and a process on a plain ``redis://`` URL imports only this).
"""

from __future__ import annotations

import math
import time
from contextlib import suppress
from typing import Any

import redis
from redis.sentinel import SentinelConnectionPool

#: How often (seconds) a client in use asks the sentinels where the master is.
FOLLOW_S = 1.0
#: An ask that took this long waits this many times as long before the next, so sentinels
#: that answer slowly (or not at all, each until its timeout) hold up a client's calls for at
#: most a twentieth of its time.
_SLOWNESS = 20


def next_ask(started: float, follow_s: float) -> float:
    """When (monotonic s) to ask the sentinels again, after an ask that ``started`` then."""
    now = time.monotonic()
    return now + max(follow_s, _SLOWNESS * (now - started))


class FollowingPool(SentinelConnectionPool):
    """redis-py's pool of a Sentinel-managed master, which also asks the sentinels where the
    master is while it is in use (at most every ``follow_s``) and drops its connections to a
    server they no longer name.

    redis-py asks only when a connection opens. A master that ``SENTINEL FAILOVER`` (or a
    partition) replaced stays a master, taking writes, until the sentinels make it a replica
    of the new one some ten seconds later, which discards them: a connection left open to it
    would keep writing jobs there, acknowledged and then lost.
    """

    follow_s = FOLLOW_S
    _next_ask = -math.inf

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection of the pool, after asking the sentinels if it is time to."""
        self.master_address_now()
        return super().get_connection(*args, **kwargs)

    def master_address_now(self) -> Any:
        """The master's address, asked of the sentinels if it is time to (``follow_s`` after
        they last were, or longer after a slow answer; a change drops the idle connections);
        ``None`` if none ever answered."""
        started = time.monotonic()
        if started >= self._next_ask:
            # No sentinel answered: the connection's own errors tell, if it has any.
            with suppress(redis.ConnectionError, redis.TimeoutError):
                self.get_master_address()  # type: ignore[no-untyped-call]
            self._next_ask = next_ask(started, self.follow_s)
        return self.master_address

    def left_behind(self, connection: Any) -> bool:
        """Whether ``connection`` (of this pool or made with its settings) is open to a server
        the sentinels no longer name as the master."""
        if not connection.is_connected:
            return False
        address = self.master_address_now()
        return address is not None and (connection.host, connection.port) != tuple(address)

    def close(self) -> None:
        """Close the pool's connections and its clients' of the sentinels (each connects
        again when next used)."""
        super().close()
        for sentinel in self.sentinel_manager.sentinels:
            sentinel.close()
