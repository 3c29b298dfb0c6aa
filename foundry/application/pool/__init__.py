"""The prefork pool: a supervising parent that alone talks to the queue, and forked children."""

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.loop import Pool
from foundry.application.pool.outcome import Outcome, OutcomeKind, PoolObserver

__all__ = ["Outcome", "OutcomeKind", "Pool", "PoolConfig", "PoolObserver"]
