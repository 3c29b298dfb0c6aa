"""The prefork pool: a supervising parent that alone talks to the queue, and forked children."""

from foundry.application.outcome import Outcome, OutcomeKind, PoolObserver
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.loop import Pool

__all__ = ["Outcome", "OutcomeKind", "Pool", "PoolConfig", "PoolObserver"]
