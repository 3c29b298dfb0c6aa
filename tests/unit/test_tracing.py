"""The OpenTelemetry middleware: a job's span is the child of the span that dispatched it.

The spans are recorded by a tracer written here over the OpenTelemetry API (the SDK is not a
dependency); the propagation is the API's own W3C trace-context propagator.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.contrib.tracing import TracePropagation


class RecordedSpan(trace.NonRecordingSpan):
    """A span with a real context that keeps what the middleware tells it."""

    def __init__(
        self,
        context: trace.SpanContext,
        name: str,
        parent: trace.SpanContext,
        kind: trace.SpanKind,
        attributes: Mapping[str, Any],
    ) -> None:
        super().__init__(context)
        self.name, self.parent, self.kind, self.attributes = name, parent, kind, attributes
        self.exceptions: list[str] = []
        self.status: trace.Status | None = None
        self.ended = False

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self.exceptions.append(type(exception).__name__)

    def set_status(self, status: Any, description: str | None = None) -> None:
        self.status = status

    def end(self, end_time: int | None = None) -> None:
        self.ended = True


class RecordingTracer(trace.Tracer):
    """Hands out ``RecordedSpan``s: children of the given (or current) context's span."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []
        self._ids = itertools.count(1)

    def start_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> RecordedSpan:
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else 0x1F
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED)
        own = trace.SpanContext(trace_id, next(self._ids), is_remote=False, trace_flags=flags)
        span = RecordedSpan(own, name, parent, kind, attributes or {})
        self.spans.append(span)
        return span

    @contextmanager  # type: ignore[override]
    def start_as_current_span(self, name: str, **kwargs: Any) -> Iterator[RecordedSpan]:
        span = self.start_span(name, **kwargs)
        with trace.use_span(span, end_on_exit=True):
            yield span


class RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.tracer = RecordingTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> RecordingTracer:
        return self.tracer


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


def _dispatched(provider: RecordingProvider) -> tuple[foundry.JobRegistry, foundry.Job, int]:
    registry = foundry.JobRegistry()
    registry.use(TracePropagation(provider))

    @registry.job(name="send")
    def send() -> None:
        pass

    clock = ManualClock()
    queue = MemoryQueue(clock)
    with provider.tracer.start_as_current_span("POST /orders") as request:
        job_id = foundry.Dispatcher(queue, registry, clock).dispatch(send)
    record = queue.get(job_id)
    assert record is not None
    return registry, record.job, request.get_span_context().span_id


def _context(job: foundry.Job) -> foundry.JobContext:
    return foundry.JobContext(job.id, job.name, job.queue, 1, job.metadata)


def _run_span(provider: RecordingProvider) -> RecordedSpan:
    return next(span for span in provider.tracer.spans if span.name == "run send")


def test_a_job_runs_in_a_span_whose_parent_is_the_dispatching_span(
    provider: RecordingProvider,
) -> None:
    registry, job, request_id = _dispatched(provider)
    seen = []

    registry.hooks.run_job(_context(job), lambda: seen.append(trace.get_current_span()))

    run = _run_span(provider)
    assert "traceparent" in job.metadata
    assert run.parent.span_id == request_id
    assert run.parent.is_remote  # it came through the job's metadata
    assert run.kind is trace.SpanKind.CONSUMER
    assert run.attributes["messaging.message.id"] == job.id
    assert seen == [run]
    assert run.ended


def test_a_failed_attempt_s_span_records_the_error(provider: RecordingProvider) -> None:
    registry, job, _ = _dispatched(provider)

    with pytest.raises(ZeroDivisionError):
        registry.hooks.run_job(_context(job), lambda: 1 / 0)

    run = _run_span(provider)
    assert run.status is not None
    assert run.status.status_code is trace.StatusCode.ERROR
    assert run.exceptions == ["ZeroDivisionError"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # the job's context was detached
