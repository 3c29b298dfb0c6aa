"""Running the ``foundry`` command in-process against a queue a test owns."""

from __future__ import annotations

from collections.abc import Mapping

from click.testing import CliRunner, Result
from dependency_injector import providers

from foundry.entrypoints.cli import cli
from foundry.entrypoints.container import Container, build_container
from foundry.entrypoints.settings import Settings
from foundry.ports import Clock, QueuePort


def container_for(queue: QueuePort, clock: Clock, settings: Settings | None = None) -> Container:
    """A container whose queue (and worker registry) is ``queue`` and whose clock is ``clock``."""
    container = build_container(settings or Settings())
    container.queue.override(providers.Object(queue))
    container.clock.override(providers.Object(clock))
    return container


def invoke(
    container: Container,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Result:
    """``foundry ARGS`` in this process, with ``container`` as the composition root."""
    return CliRunner().invoke(cli, list(args), obj=container, input=stdin, env=env)
