"""``LeaseTiming``: how long a claim holds a job, and every timing that follows from it.

``QUEUE_TIMEOUT`` is the lease; the worker renews it, the queue's client times out its calls
and bounds its blocking waits, all by the ratios kept here and nowhere else.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from foundry.domain.errors import ConfigurationError


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ConfigurationError(f"{attribute.name} must be a positive duration, got {value}")


def _positive_or_none(
    _: object, attribute: attrs.Attribute[timedelta | None], value: timedelta | None
) -> None:
    if value is not None and value <= timedelta(0):
        raise ConfigurationError(f"{attribute.name} must be a positive duration, got {value}")


@attrs.frozen
class LeaseTiming:
    """A lease and the timings derived from it.

    * ``renew_every``: a third of the lease. Held leases are renewed this often, so two
      renewals can fail before a lease lapses.
    * ``reply_timeout``: how long a call to the queue's backend waits for its reply before it
      counts as lost and is sent again (the Redis client's socket timeout): a third of the
      lease, and at most ``reply_timeout_cap``. A claim whose reply was lost gets its jobs back
      only while their lease lasts, so its re-send must come well within the lease.
    * ``block_limit``: the longest a blocking wait for work (a claim's BLPOP) may last: half the
      reply timeout, since a wait that outlasts the reply timeout fails as a lost reply.
    * ``fence_margin``: a sixth of the lease. A worker that could not renew a lease gives up its
      job this long before the lease's deadline.
    """

    lease: timedelta = attrs.field(validator=_positive)
    reply_timeout_cap: timedelta | None = attrs.field(default=None, validator=_positive_or_none)

    @property
    def renew_every(self) -> timedelta:
        """How often held leases are renewed."""
        return self.lease / 3

    @property
    def reply_timeout(self) -> timedelta:
        """How long a call waits for its reply before it counts as lost."""
        third = self.lease / 3
        cap = self.reply_timeout_cap
        return third if cap is None else min(cap, third)

    @property
    def block_limit(self) -> timedelta:
        """The longest one blocking wait for work may last."""
        return self.reply_timeout / 2

    @property
    def fence_margin(self) -> timedelta:
        """How long before a lease's deadline a worker that cannot renew it gives its job up."""
        return self.lease / 6
