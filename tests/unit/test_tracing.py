"""The OpenTelemetry middleware: a job's span is the child of the span that dispatched it."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.contrib.tracing import TracePropagation


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


def _dispatched(provider: TracerProvider) -> tuple[foundry.JobRegistry, foundry.Job, int]:
    registry = foundry.JobRegistry()
    registry.use(TracePropagation(provider))

    @registry.job(name="send")
    def send() -> None:
        pass

    clock = ManualClock()
    queue = MemoryQueue(clock)
    with provider.get_tracer("web").start_as_current_span("POST /orders") as request:
        job_id = foundry.Dispatcher(queue, registry, clock).dispatch(send)
    record = queue.get(job_id)
    assert record is not None
    return registry, record.job, request.get_span_context().span_id


def _context(job: foundry.Job) -> foundry.JobContext:
    return foundry.JobContext(job.id, job.name, job.queue, 1, job.metadata)


def test_a_job_runs_in_a_span_whose_parent_is_the_dispatching_span(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    registry, job, request_id = _dispatched(provider)
    seen = []

    registry.hooks.run_job(_context(job), lambda: seen.append(trace.get_current_span()))

    run = next(span for span in spans.get_finished_spans() if span.name == "run send")
    assert "traceparent" in job.metadata
    assert run.parent is not None
    assert run.parent.span_id == request_id
    assert run.kind is trace.SpanKind.CONSUMER
    assert run.attributes is not None
    assert run.attributes["messaging.message.id"] == job.id
    assert seen[0].get_span_context().span_id == run.context.span_id  # type: ignore[union-attr]


def test_a_failed_attempt_s_span_records_the_error(
    provider: TracerProvider, spans: InMemorySpanExporter
) -> None:
    registry, job, _ = _dispatched(provider)

    with pytest.raises(ZeroDivisionError):
        registry.hooks.run_job(_context(job), lambda: 1 / 0)

    run = next(span for span in spans.get_finished_spans() if span.name == "run send")
    assert run.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in run.events] == ["exception"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # the job's context was detached
