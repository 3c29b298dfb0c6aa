"""What every command shares: exit codes, error reporting, the container, the console."""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from foundry.domain import (
    CacheUnavailable,
    ConfigurationError,
    FoundryError,
    InvalidJob,
    QueueBroken,
    QueueUnavailable,
    UnknownHandler,
    validate_queue_name,
)
from foundry.domain.job import ID_RULE, is_job_id
from foundry.entrypoints.container import Container
from foundry.entrypoints.injection import containers
from foundry.entrypoints.logging import LEVELS
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import BatchPort, QueuePort, SchedulePort, WorkerRegistry

if TYPE_CHECKING:
    from rich.console import Console


class Exit(enum.IntEnum):
    """The ``foundry`` command's exit codes (also listed in ``foundry --help``)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    INTERRUPTED = 130


EXIT_CODES_HELP = """\b
Exit codes:
  0    success (work --burst: every queue drained)
  1    the operation failed (job not found, self-check failed, jobs unaccounted for, a queue's
       data broken: a key of the wrong type)
  2    bad usage or configuration (the message names the option, variable or handler)
  3    a backend (Redis, PostgreSQL; queue or cache) is unreachable: check REDIS_URL or
       DATABASE_URL (stats: after showing the queues a Redis Cluster's other masters serve)
  130  interrupted (work: a second Ctrl-C, running jobs were killed and released)
"""


def stderr() -> Console:
    """A console on stderr, for errors and warnings."""
    from rich.console import Console  # noqa: PLC0415 - rich costs ~20 ms; `work` rarely prints

    return Console(stderr=True, highlight=False)


def stdout() -> Console:
    """A console on stdout; wide when not a terminal, so piped tables are never cut."""
    from rich.console import Console  # noqa: PLC0415

    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(width=200, highlight=False)


def abort(message: str, code: Exit = Exit.FAILED) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    stderr().print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise SystemExit(int(code))


def exit_code_for(error: FoundryError) -> Exit:
    """Which exit code a Foundry error maps to."""
    if isinstance(error, ConfigurationError | InvalidJob | UnknownHandler):
        return Exit.USAGE
    if isinstance(error, QueueBroken):  # the backend answers; its data is wrong
        return Exit.FAILED
    if isinstance(error, QueueUnavailable | CacheUnavailable):
        return Exit.UNAVAILABLE
    return Exit.FAILED


class FoundryGroup(click.Group):
    """A click group that turns Foundry's errors into a message and a documented exit code.

    ``lazy_commands`` maps a command name to ``module:attribute``; the module is imported
    when the command is first looked up, so a command pays only for its own imports.
    ``aliases`` maps another accepted name to a command's name; help lists only the latter.
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self.aliases = dict(aliases or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included, sorted (aliases left out)."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands} - set(self.aliases))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name`` (or the one it is an alias of), importing it if lazy."""
        cmd_name = self.aliases.get(cmd_name, cmd_name)
        spec = self.lazy_commands.get(cmd_name)
        if spec is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = spec.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec} is a {type(command).__name__}, not a click command")
        self.add_command(with_log_level(command), cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a ``FoundryError`` becomes its message and exit code."""
        try:
            return super().invoke(ctx)
        except FoundryError as error:
            abort(escape(str(error)), exit_code_for(error))


def _set_log_level(ctx: click.Context, _: click.Parameter, level: str | None) -> None:
    if level is not None and not ctx.resilient_parsing:
        from foundry.entrypoints.logging import configure_logging  # noqa: PLC0415

        configure_logging(level)


def with_log_level(command: click.Command) -> click.Command:
    """``command`` (and a group's subcommands) accepting ``--log-level`` after its name too."""
    if not any(param.name == "log_level" for param in command.params):
        command.params.append(
            click.Option(
                ["--log-level"],
                type=click.Choice(LEVELS, case_sensitive=False),
                expose_value=False,
                callback=_set_log_level,
                help="Least severe log level written to stderr (as before the command).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_log_level(sub)
    return command


def escape(text: str) -> str:
    """``text`` safe to print with rich markup on."""
    return text.replace("[", r"\[")


def container(ctx: click.Context) -> Container:
    """The process's container (built by the ``foundry`` group from the environment)."""
    found = ctx.find_root().obj
    if not isinstance(found, containers.Container):  # instances are DynamicContainers
        raise click.UsageError("no container: run this command through `foundry`")
    return cast(Container, found)


def settings(ctx: click.Context) -> Settings:
    """The validated settings."""
    value = container(ctx).settings()
    assert isinstance(value, Settings)
    return value


def queue(ctx: click.Context) -> QueuePort:
    """The configured queue."""
    port: QueuePort = container(ctx).queue()
    return port


def workers(ctx: click.Context) -> WorkerRegistry:
    """The configured worker registry (the queue backend publishes heartbeats)."""
    registry: WorkerRegistry = container(ctx).workers()
    return registry


def batches(ctx: click.Context) -> BatchPort:
    """The configured batches (kept by the queue backend)."""
    port: BatchPort = container(ctx).batches()
    return port


def schedules(ctx: click.Context) -> SchedulePort:
    """The configured schedules' state (kept by the queue backend)."""
    port: SchedulePort = container(ctx).schedules()
    return port


def private_memory_queue(ctx: click.Context) -> bool:
    """Whether the queue is this process's own memory queue (not one a test handed in)."""
    overriding = container(ctx).queue.last_overriding
    return settings(ctx).queue_driver is Driver.MEMORY and overriding is None


def note_private_queue(ctx: click.Context) -> None:
    """Say on stderr, before a command reads the queue, that a private in-memory queue is
    empty (so "no job" or "no dead letters" is not taken as the workers' answer)."""
    if private_memory_queue(ctx):
        stderr().print(
            "note: QUEUE_DRIVER is memory, so this shows only this process's own (empty) "
            "queue; set QUEUE_DRIVER=redis to inspect the workers' queues"
        )


def unknown_queue(ctx: click.Context, name: str) -> str | None:
    """Why ``name`` is likely a typo if no job was ever enqueued to it (naming the queues
    that hold jobs), else ``None``. Refuses a malformed name (``InvalidJob``)."""
    known = queue(ctx).queues()
    if validate_queue_name(name) in known:
        return None
    return (
        f"queue {name!r} has never held a job (known: {', '.join(known) or 'none'}); check the name"
    )


def require_known_queue(ctx: click.Context, name: str) -> str:
    """``name``, or exit 1 if it never held a job (acting on it would do nothing)."""
    problem = unknown_queue(ctx, name)
    if problem is not None:
        abort(problem)
    return name


def note_unknown_queue(ctx: click.Context, name: str) -> str:
    """``name``, said on stderr first if it never held a job (so zeros are not taken for
    the answer about the queue meant)."""
    problem = unknown_queue(ctx, name)
    if problem is not None and not private_memory_queue(ctx):
        stderr().print(f"note: {problem}", soft_wrap=True)
    return name


def require_shared_queue(ctx: click.Context, what: str) -> None:
    """Refuse an admin command that would act on a private in-memory queue and vanish."""
    if private_memory_queue(ctx):
        abort(
            f"QUEUE_DRIVER is memory, so {what} would only touch this process's own queue, "
            "which vanishes when it exits; set QUEUE_DRIVER=redis and REDIS_URL",
            Exit.USAGE,
        )


class TakesIds(click.Command):
    """A command whose arguments are ids. Ids are base64url, so one may begin with ``-``
    and read as an unknown option: that is refused with the fix (``--`` before it)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as usual; an id taken for an option is a usage error showing ``--``."""
        given_args = list(args)  # the parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            given = next((a for a in given_args if _dashed_id(a, error.option_name)), None)
            if given is None:
                raise
            command = " ".join(["foundry", *ctx.command_path.split()[1:]])
            raise click.UsageError(
                f"{given!r} reads as an option; put ids that begin with '-' after '--', "
                f"like: {command} -- {given}",
                ctx,
            ) from None


def _dashed_id(arg: str, option: str) -> bool:
    return arg.startswith(option) and not arg.startswith("--") and is_job_id(arg)


def _checked_id(value: str, what: str) -> str:
    if not is_job_id(value):
        raise click.BadParameter(f"{value[:80]!r} is not a {what} ({ID_RULE})")
    return value


def job_ids(_: click.Context, __: click.Parameter, value: str | tuple[str, ...]) -> Any:
    """A click callback: the JOB_ID argument(s) as given, or a usage error naming the rule
    (an id no job can have, which would otherwise read as "no such job")."""
    if isinstance(value, str):
        return _checked_id(value, "job id")
    return tuple(_checked_id(one, "job id") for one in value)


def optional_job_id(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """A click callback: a --job-id option as given (or None), or a usage error naming the
    rule."""
    return None if value is None else _checked_id(value, "job id")


def batch_id(_: click.Context, __: click.Parameter, value: str) -> str:
    """A click callback: the BATCH_ID argument, or a usage error naming the rule."""
    return _checked_id(value, "batch id")


def queue_names(raw: str) -> tuple[str, ...]:
    """``a,b`` as validated queue names, order kept."""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not names:
        raise click.BadParameter("give at least one queue name, like default or high,default")
    for name in names:
        validate_queue_name(name)
    return names
