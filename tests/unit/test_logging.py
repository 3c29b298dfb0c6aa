import io
import logging
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from foundry.entrypoints.logging import bridge_to_stdlib, configure_logging


@pytest.fixture
def restore_loguru() -> Iterator[None]:
    yield None
    logger.remove()
    logger.add(sys.stderr)  # loguru's own default


def test_the_human_format_shows_the_job_context_when_bound(restore_loguru: object) -> None:
    sink = io.StringIO()
    configure_logging("INFO", sink)

    with logger.contextualize(queue="mail", job_id="j1", attempt=2):
        logger.info("sending {}", "welcome")
    logger.info("no job here")

    first, second = sink.getvalue().splitlines()
    assert "[queue=mail job_id=j1 attempt=2] sending welcome" in first
    assert "[" not in second
    assert second.endswith("no job here")


def test_the_level_filters_less_severe_records(restore_loguru: object) -> None:
    sink = io.StringIO()
    configure_logging("warning", sink)

    logger.info("quiet")
    logger.warning("loud")

    assert "quiet" not in sink.getvalue()
    assert "loud" in sink.getvalue()


def test_the_stdlib_bridge_hands_records_and_job_context_to_logging(
    caplog: pytest.LogCaptureFixture, restore_loguru: object
) -> None:
    logger.remove()
    sink_id = bridge_to_stdlib()

    with caplog.at_level(logging.INFO), logger.contextualize(job_id="j7"):
        logger.warning("disk {} full", "/tmp")
    logger.remove(sink_id)

    [record] = [r for r in caplog.records if r.name.startswith("foundry.")]
    assert record.getMessage() == "disk /tmp full"
    assert record.levelno == logging.WARNING
    assert record.job_id == "j7"  # type: ignore[attr-defined]
