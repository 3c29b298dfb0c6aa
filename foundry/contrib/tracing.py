"""OpenTelemetry trace propagation: a job's span is a child of the span that dispatched it.

Needs the ``otel`` extra (``pip install foundry[otel]``, the OpenTelemetry API); the
application configures the SDK and its exporter as usual, in the producer and in the worker
(``after_fork`` of a middleware of its own, or at import of its app module).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token

from opentelemetry import context, propagate, trace

from foundry import Job, JobContext, JobOutcome, Middleware


class TracePropagation(Middleware):
    """Carries the dispatching code's trace context in the job's metadata (W3C
    ``traceparent``/``tracestate``, or what the configured propagator writes) and runs each
    attempt in a ``CONSUMER`` span ``"run <job name>"``, child of that context, with the job's
    id, queue and attempt as attributes; a failed attempt records its exception and an error
    status.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("foundry", tracer_provider=tracer_provider)
        self._open: tuple[trace.Span, Token[context.Context]] | None = None  # one job at a time

    def on_dispatch(self, job: Job) -> Mapping[str, str]:
        """The current trace context, as metadata."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    def before_job(self, job: JobContext) -> None:
        """Open the attempt's span under the dispatcher's context and make it current."""
        parent = propagate.extract(dict(job.metadata))
        span = self._tracer.start_span(
            f"run {job.name}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "foundry",
                "messaging.message.id": job.job_id,
                "messaging.destination.name": job.queue,
                "foundry.attempt": job.attempt,
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        self._open = (span, token)

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        """Close the span with the attempt's outcome."""
        if self._open is None:
            return
        span, token = self._open
        self._open = None
        if outcome.error is not None:
            span.record_exception(outcome.error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(outcome.error).__name__))
        span.end()
        context.detach(token)
