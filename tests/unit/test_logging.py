import io
import json
import logging
import os
import re
import subprocess
import sys
import sysconfig
from datetime import timedelta

import pytest
from loguru import logger
from loguru._better_exceptions import ExceptionFormatter

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.context import JobContext, set_current
from foundry.domain import Dead, ErrorInfo
from foundry.entrypoints.logging import configure_logging, library_dirs
from foundry.ports import ClaimRequest
from tests.backends import job

LIBRARY = logging.getLogger("foundry.tests")


def test_the_human_format_shows_the_job_context_a_record_carries() -> None:
    sink = io.StringIO()
    configure_logging("INFO", sink)

    LIBRARY.info("sending %s", "welcome", extra={"queue": "mail", "job_id": "j1", "attempt": 2})
    LIBRARY.info("no job here")

    first, second = sink.getvalue().splitlines()
    assert "[queue=mail job_id=j1 attempt=2] sending welcome" in first
    assert "[" not in second
    assert second.endswith("no job here")


def test_durations_in_records_are_written_as_people_read_them() -> None:
    sink = io.StringIO()
    configure_logging("INFO", sink)

    LIBRARY.info("stopping: %s job(s) running, grace %s", 2, timedelta(seconds=30))
    LIBRARY.warning("job %s failed; retry in %s", "j1", timedelta(seconds=1.5))

    first, second = sink.getvalue().splitlines()
    assert first.endswith("stopping: 2 job(s) running, grace 30s")
    assert second.endswith("job j1 failed; retry in 1.5s")


def test_the_level_filters_less_severe_records() -> None:
    sink = io.StringIO()
    configure_logging("warning", sink)

    LIBRARY.info("quiet")
    LIBRARY.warning("loud")

    assert "quiet" not in sink.getvalue()
    assert "loud" in sink.getvalue()


def test_other_libraries_records_below_warning_are_not_written() -> None:
    sink = io.StringIO()
    configure_logging("DEBUG", sink)

    logging.getLogger("redis.connection").info("chatty")
    logging.getLogger("myapp").error("broken")

    assert "chatty" not in sink.getvalue()
    assert "broken" in sink.getvalue()


def test_a_handlers_own_loguru_calls_carry_the_job_it_runs() -> None:
    sink = io.StringIO()
    configure_logging("INFO", sink)

    set_current(JobContext("j9", "report", "reports", 3))
    try:
        logger.info("rendering")
    finally:
        set_current(None)

    assert "[queue=reports job_id=j9 attempt=3] rendering" in sink.getvalue()


def test_a_host_using_stdlib_logging_gets_foundrys_records_with_the_job_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(job("poison", queue="mail"))
    [lease] = queue.claim(ClaimRequest(("mail",), lease=timedelta(seconds=30)))

    queue.fail(lease, ErrorInfo(type="Boom"), Dead("poisoned"))

    [record] = [r for r in caplog.records if r.name.startswith("foundry.")]
    assert record.levelno == logging.WARNING
    assert "poisoned" in record.getMessage()
    assert (record.job_id, record.queue) == (lease.job_id, "mail")  # type: ignore[attr-defined]


def test_the_library_dirs_are_the_ones_loguru_would_compute() -> None:
    names = ("stdlib", "platstdlib", "platlib", "purelib")
    paths = {
        sysconfig.get_path(name, scheme)
        for scheme in sysconfig.get_scheme_names()
        for name in names
    }
    loguru_own = [os.path.abspath(path).lower() + os.sep for path in paths if path in sys.path]

    assert sorted(library_dirs()) == sorted(loguru_own)


def test_a_logged_exception_is_written_with_its_traceback() -> None:
    sink = io.StringIO()
    configure_logging("INFO", sink)

    try:
        raise ValueError("the cause")
    except ValueError:
        LIBRARY.exception("it failed")

    assert "it failed" in sink.getvalue()
    assert "ValueError: the cause" in sink.getvalue()
    assert "Traceback" in sink.getvalue()


def test_loguru_tells_library_frames_from_the_apps_with_the_list_given_to_it() -> None:
    configure_logging("INFO", io.StringIO())

    formatter = ExceptionFormatter()  # type: ignore[no-untyped-call]  # as logger.add builds it

    assert not formatter._is_file_mine(json.__file__)  # type: ignore[no-untyped-call]
    assert formatter._is_file_mine(__file__)  # type: ignore[no-untyped-call]


def _run(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter (stderr a pipe, loguru not imported yet)."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


_RECORDS = (
    "log = logging.getLogger('foundry.tests')\n"
    "log.info('sent %s', 'mail', extra={'queue': 'mail', 'job_id': 'j1', 'attempt': 2})\n"
    "log.warning('no job here')\n"
    "log.log(25, 'a level of its own')\n"
    "log.debug('below the level')\n"
    "log.info('grace %s', __import__('datetime').timedelta(minutes=2))\n"
    "logging.getLogger('redis.connection').info('chatty')\n"
    "logging.getLogger('myapp').error('broken')\n"
    "set_current(JobContext('j9', 'report', 'reports', 3))\n"
    "logging.getLogger('myapp').warning('inside a job')\n"
    "set_current(None)\n"
)


def test_records_are_written_without_loguru_in_the_line_loguru_writes() -> None:
    script = (
        "import logging, sys\n"
        "from foundry.application.context import JobContext, set_current\n"
        "from foundry.entrypoints.logging import configure_logging\n"
        "configure_logging('INFO')\n"
        f"{_RECORDS}"
        "print('loguru' in sys.modules)\n"
        "import loguru\n"
        "sys.stderr.write('--\\n')\n"
        f"{_RECORDS}"
    )

    result = _run(script)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "False\n"
    written, through_loguru = result.stderr.split("--\n")
    assert [line[12:] for line in written.splitlines()] == [
        line[12:] for line in through_loguru.splitlines()
    ]
    lines = written.splitlines()
    assert len(lines) == 6
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} INFO    \d+ \[queue=mail job_id=j1 attempt=2] sent mail", lines[0]
    )
    assert " Level 25 " in lines[2]
    assert lines[3].endswith(" grace 2m")
    assert lines[5].endswith("[queue=reports job_id=j9 attempt=3] inside a job")


def test_a_handler_importing_loguru_later_gets_foundrys_sink_and_the_job_context() -> None:
    script = (
        "import os, sys\n"
        "from foundry.application.context import JobContext, set_current\n"
        "from foundry.entrypoints.logging import configure_logging\n"
        "configure_logging('INFO')\n"
        "from loguru import logger\n"
        "print(os.environ.get('LOGURU_AUTOINIT'))\n"
        "set_current(JobContext('j9', 'report', 'reports', 3))\n"
        "logger.info('rendering')\n"
        "logger.debug('below the level')\n"
    )

    result = _run(script)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n"  # the variable is not left for the handler's subprocesses
    [line] = result.stderr.splitlines()  # one sink: loguru's default one is not there
    assert line.endswith("[queue=reports job_id=j9 attempt=3] rendering")


def test_a_record_with_a_traceback_loads_loguru_to_write_it() -> None:
    script = (
        "import logging, sys\n"
        "from foundry.entrypoints.logging import configure_logging\n"
        "configure_logging('INFO')\n"
        "try:\n"
        "    raise ValueError('the cause')\n"
        "except ValueError:\n"
        "    logging.getLogger('foundry.tests').exception('it failed')\n"
        "print('loguru' in sys.modules)\n"
    )

    result = _run(script)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"
    assert "it failed" in result.stderr
    assert "Traceback" in result.stderr
    assert "ValueError: the cause" in result.stderr
