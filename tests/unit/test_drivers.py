import subprocess
import sys

import pytest

pytest.importorskip("opentelemetry.metrics")
pytest.importorskip("redis.observability.metrics")

_LATER = (
    "import sys\n"
    "from redis.observability import metrics\n"
    "print('opentelemetry' in sys.modules, metrics.OTEL_AVAILABLE)\n"
    "import opentelemetry.metrics\n"
    "print(metrics.OTEL_AVAILABLE, metrics.Meter is opentelemetry.metrics.Meter)\n"
)


def _run(script: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_redis_imported_without_opentelemetry_learns_of_it_at_its_import() -> None:
    hidden = _run("from foundry.entrypoints.drivers import import_redis\nimport_redis()\n" + _LATER)
    plain = _run("import redis\n" + _LATER)

    assert hidden == ["False False", "True True"]
    assert plain == ["True True", "True True"]


def test_a_process_that_imported_opentelemetry_first_keeps_redis_as_it_is() -> None:
    lines = _run(
        "import opentelemetry.metrics\n"
        "from foundry.entrypoints.drivers import import_redis\nimport_redis()\n" + _LATER
    )

    assert lines == ["True True", "True True"]
