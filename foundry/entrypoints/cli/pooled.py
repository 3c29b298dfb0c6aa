"""The prefork pool as the CLI builds it: the container's queue, clock and worker registry."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import click

from foundry.application.pool import Pool, PoolConfig, PoolObserver
from foundry.application.pool.loop import Timer
from foundry.application.registry import JobRegistry
from foundry.entrypoints.cli import common
from foundry.entrypoints.container import reinit_per_process


def build_pool(
    ctx: click.Context,
    registry: JobRegistry,
    config: PoolConfig,
    *,
    observer: PoolObserver | None = None,
    timers: Sequence[Timer] = (),
) -> Pool:
    """A pool over the configured backend whose children re-create their clients after fork."""
    box = common.container(ctx)
    return Pool(
        common.queue(ctx),
        registry,
        config,
        clock=box.clock(),
        workers=common.workers(ctx),
        child_init=partial(reinit_per_process, box),
        observer=observer,
        timers=timers,
    )
