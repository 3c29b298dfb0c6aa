"""The ``SchedulePort`` on Redis: schedules' state in the hash slot of their jobs' queue.

Per queue, ``<prefix>:{<queue>}:sched:due`` (a sorted set of waiting schedules by next tick,
ms) and ``sched:rec`` (a hash of each schedule's record); so one function call steps a
schedule and enqueues its ticks' jobs in one slot, atomically (``schedule_fire.lua``). The
queues holding schedules are listed in ``<prefix>:{registry}:schedules``.

Costs: ``poll`` one function call per queue, pipelined (O(log n + limit) each; each poll
starts reading the due schedules at a random place, so schedulers polling together mostly
fire different ones instead of racing for the same); ``fire`` one
call per queue and batch, pipelined; ``sync_schedules`` one per queue.

Each queue's call is answered on its own (``errors_in_place``): a queue whose keys Redis
refuses (a key of the wrong type) is named in the answer, and the other queues' calls stand.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import redis

from foundry.adapters.redis.broken import WITH_SCHEDULES, broken
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, from_ms, job_args, to_ms
from foundry.adapters.redis.runner import Arg, FunctionRunner, call
from foundry.domain import ConfigurationError, QueueBroken, QueuesBroken, QueueUnavailable
from foundry.ports.queue_types import Duplicate, Enqueued, EnqueueOutcome

if TYPE_CHECKING:
    from foundry.ports.schedule_types import (
        Fired,
        Firing,
        Poll,
        ScheduleEntry,
        ScheduleListing,
        ScheduleState,
    )

_Call = tuple[str, Sequence[str], Sequence[Arg]]


class RedisSchedules:
    """The Redis queue's ``SchedulePort`` part."""

    def __init__(
        self,
        client: redis.Redis,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        *,
        records: RecordCodec,
        epochs: Epochs,
    ) -> None:
        self._client = client
        self._runner = runner
        self._keys = keys
        self._clock = clock
        self._records = records
        self._epochs = epochs

    def _schedule_keys(self, queue: str) -> tuple[str, ...]:
        keys = self._keys.queue(queue)
        return (*keys.all, keys.named("sched:due"), keys.named("sched:rec"))

    def _schedules_key(self) -> str:
        return f"{self._keys.prefix}:{{registry}}:schedules"

    def _pipelined(
        self, what: str, queues: Sequence[str], calls: list[_Call]
    ) -> tuple[list[Any], dict[str, QueueBroken]]:
        """One call per queue of ``queues``, in one write, each answered on its own: a queue's
        error reply is ``None`` in its place and its ``QueueBroken`` returned (an error reply
        that is no queue's own is raised)."""
        if not calls:
            return [], {}
        with guard(what):
            replies: list[Any] = self._runner.call_many(calls, errors_in_place=True)
        refused: dict[str, QueueBroken] = {}
        for index, (queue, reply) in enumerate(zip(queues, replies, strict=True)):
            if isinstance(reply, redis.ResponseError):
                error = self._broken(queue, reply)
                if not isinstance(error, QueueBroken):
                    raise error from reply
                refused[queue], replies[index] = error, None
        return replies, refused

    def _broken(
        self, queue: str, reply: redis.ResponseError
    ) -> QueueUnavailable | ConfigurationError:
        """Our error for ``queue``'s error reply, naming its keys of the wrong type, the
        schedule keys among them (one round trip)."""
        return broken(self._client, self._keys.queue(queue), reply, WITH_SCHEDULES)

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """Know every declared schedule: one call per queue, pipelined."""
        by_queue: dict[str, list[Arg]] = {}
        for entry in entries:
            args = by_queue.setdefault(entry.queue, ["sync", "1" if redefine else "0"])
            args += [entry.name, entry.definition, str(to_ms(entry.first_at))]
        if by_queue:
            with guard("sync_schedules"):
                call(self._client, "SADD", self._schedules_key(), *by_queue)
        calls: list[_Call] = [
            ("schedule_admin", self._schedule_keys(q), a) for q, a in by_queue.items()
        ]
        _, refused = self._pipelined("sync_schedules", list(by_queue), calls)
        if refused:
            raise QueuesBroken(list(refused.values()))

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """The server's now (or the test clock's) and the schedules of ``queues`` due by now
        + ``ahead``."""
        # The schedule values are imported where made: a worker whose app declares no
        # schedule never polls, and never creates their classes.
        from foundry.ports.schedule_types import DueSchedule, Poll  # noqa: PLC0415

        names = list(dict.fromkeys(queues))
        if not names:
            with guard("poll"):
                return Poll(from_ms(self._clock.read(self._client)), (), None)
        now = self._clock.arg()
        calls: list[_Call] = [
            (
                "schedule_poll",
                self._schedule_keys(q),
                [now, max(limit, 0), f"{random.random():.6f}", ceil_ms(ahead)],
            )
            for q in names
        ]
        replies, refused = self._pipelined("poll", names, calls)
        answered = [(queue, reply) for queue, reply in zip(names, replies, strict=True) if reply]
        if answered:
            now_ms = int(answered[0][1][0])
        else:
            with guard("poll"):
                now_ms = self._clock.read(self._client)
        due: list[DueSchedule] = []
        wakes = []
        for queue, reply in answered:
            if reply[1]:
                wakes.append(int(reply[1]))
            for i in range(2, len(reply), 3):
                if len(due) < limit:
                    name, tick, definition = reply[i].decode(), int(reply[i + 1]), reply[i + 2]
                    due.append(DueSchedule(name, queue, definition.decode(), from_ms(tick)))
                else:
                    wakes.append(now_ms)
        next_at = from_ms(min(wakes)) if wakes else None
        return Poll(from_ms(now_ms), tuple(due), next_at, tuple(refused.values()))

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """Every firing, one function call per queue, pipelined (jobs encoded first)."""
        groups: dict[str, list[int]] = {}
        for index, firing in enumerate(firings):
            groups.setdefault(firing.queue, []).append(index)
        calls: list[_Call] = []
        for queue, indices in groups.items():
            args: list[Arg] = [self._clock.arg(), self._epochs.candidate]
            for index in indices:
                args += self._firing_args(firings[index])
            calls.append(("schedule_fire", self._schedule_keys(queue), args))
        with guard("fire"):
            for queue in groups:
                self._epochs.register(queue)
        replies, refused = self._pipelined("fire", list(groups), calls)
        answers: list[Fired | None] = [None] * len(firings)
        for (queue, indices), reply in zip(groups.items(), replies, strict=True):
            if queue in refused:
                for index in indices:
                    answers[index] = _refused(firings[index], refused[queue])
                continue
            self._epochs.see(queue, reply[0])
            position = 1
            for index in indices:
                answers[index], position = _answer(firings[index], reply, position)
        return [answer for answer in answers if answer is not None]

    def _firing_args(self, firing: Firing) -> list[Arg]:
        args: list[Arg] = [
            firing.name,
            firing.definition,
            str(to_ms(firing.due_from)),
            str(to_ms(firing.next_at)),
            str(len(firing.jobs)),
        ]
        for tick, job in firing.jobs:
            args += [str(to_ms(tick)), *job_args(job, self._records.encode_job(job))]
        return args

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """Mark the named schedules orphaned."""
        if names:
            self._admin(queue, ["orphan", *names])

    def schedule_states(self) -> ScheduleListing:
        """Every schedule of every queue holding schedules (one call per queue, pipelined);
        a queue whose call Redis refuses is named apart."""
        from foundry.ports.schedule_types import ScheduleListing  # noqa: PLC0415

        with guard("schedule_states"):
            queues = sorted(
                q.decode() for q in call(self._client, "SMEMBERS", self._schedules_key())
            )
        calls: list[_Call] = [("schedule_admin", self._schedule_keys(q), ["list"]) for q in queues]
        replies, refused = self._pipelined("schedule_states", queues, calls)
        states = []
        for queue, reply in zip(queues, replies, strict=True):
            for i in range(0, len(reply or ()), 3):
                states.append(_state(reply[i].decode(), queue, reply[i + 1], reply[i + 2]))
        states.sort(key=lambda state: (state.name, state.queue))
        return ScheduleListing(tuple(states), tuple(refused.values()))

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop the schedule firing."""
        return bool(self._admin(queue, ["pause", name]))

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """Fire again from ``next_at``: one function call (2 resumed, 1 left, 0 unknown)."""
        answer = int(self._admin(queue, ["resume", name, str(to_ms(next_at))]))
        return None if answer == 0 else answer == 2

    def forget_schedule(self, queue: str, name: str) -> bool:
        """Remove the schedule's state."""
        return bool(self._admin(queue, ["forget", name]))

    def _admin(self, queue: str, args: list[Arg]) -> Any:
        with guard(f"schedule {args[0]!s}"):
            return self._runner.call("schedule_admin", self._schedule_keys(queue), args)


def _refused(firing: Firing, error: QueueBroken) -> Fired:
    from foundry.ports.schedule_types import Fired  # noqa: PLC0415

    return Fired(firing.name, applied=False, refused=error)


def _answer(firing: Firing, reply: list[Any], position: int) -> tuple[Fired, int]:
    from foundry.ports.schedule_types import Fired  # noqa: PLC0415

    applied, count = reply[position], reply[position + 1]
    raw = reply[position + 2 : position + 2 + count]
    if not applied:
        return Fired(firing.name, applied=False), position + 2 + count
    outcomes: list[EnqueueOutcome] = [
        Enqueued(job.id) if outcome == 0 else Duplicate(job.id, outcome.decode())
        for (_, job), outcome in zip(firing.jobs, raw, strict=True)
    ]
    return Fired(firing.name, bool(applied), tuple(outcomes)), position + 2 + count


def _state(name: str, queue: str, raw: bytes, next_ms: bytes) -> ScheduleState:
    from foundry.ports.schedule_types import ScheduleState  # noqa: PLC0415

    record = orjson.loads(raw)
    last = record.get("l")
    return ScheduleState(
        name=name,
        queue=queue,
        definition=record.get("d", ""),
        next_at=from_ms(int(next_ms)) if next_ms else None,
        last_tick=from_ms(int(last)) if last else None,
        last_job_id=record.get("j") or None,
        paused=record.get("p") == 1,
        orphaned=record.get("o") == 1,
    )
