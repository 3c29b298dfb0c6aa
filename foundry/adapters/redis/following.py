"""``FollowingPool``: the pool of a client of a Sentinel-managed master, which follows the
master the sentinels name while it is in use (``sentinel.py`` makes the client; the sync
runner reads the pool, and a process on a plain ``redis://`` URL imports only this).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import redis
from redis.sentinel import SentinelConnectionPool, SentinelConnectionPoolProxy

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

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._answered = _AnsweredProxy(  # type: ignore[no-untyped-call]
            connection_pool=self,
            is_master=self.is_master,
            check_connection=self.check_connection,
            service_name=service_name,
            sentinel_manager=sentinel_manager,
        )
        self.proxy = self._answered
        self.connection_kwargs["connection_pool"] = self.proxy  # what its connections ask

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection of the pool, after asking the sentinels if it is time to (a connection
        it opens then takes their answer, not asking again)."""
        if not self._ask_if_due():
            return super().get_connection(*args, **kwargs)
        self._answered.answered_for = threading.get_ident()
        try:
            return super().get_connection(*args, **kwargs)
        finally:
            self._answered.answered_for = None

    def master_address_now(self) -> Any:
        """The master's address, asked of the sentinels if it is time to (``follow_s`` after
        they last were, or longer after a slow answer; a change drops the idle connections);
        ``None`` if none ever answered."""
        self._ask_if_due()
        return self.master_address

    def _ask_if_due(self) -> bool:
        """Ask the sentinels where the master is if it is time to; whether they answered."""
        started = time.monotonic()
        if started < self._next_ask:
            return False
        try:
            self.get_master_address()  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError):
            return False  # no sentinel answered: the connection's own errors tell, if any
        finally:
            self._next_ask = next_ask(started, self.follow_s)
        return True

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


class _AnsweredProxy(SentinelConnectionPoolProxy):
    """What a ``FollowingPool``'s connections ask where the master is: the answer the pool's
    ``get_connection`` had just before in the same thread, once, else the sentinels'."""

    #: The thread whose pool just asked the sentinels (its connection need not ask again).
    answered_for: int | None = None

    def get_master_address(self) -> Any:
        if self.answered_for == threading.get_ident() and self.master_address is not None:
            self.answered_for = None  # a retry of the connect asks again
            return self.master_address
        return super().get_master_address()  # type: ignore[no-untyped-call]
