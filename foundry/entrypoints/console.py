"""The ``foundry`` console script: the CLI, without the garbage collector's passes over its
import, redis without OpenTelemetry (``drivers.import_redis``), attrs' generated methods
compiled once per installation (``codecache``).

Importing the CLI, a worker's app included, leaves some 50,000 objects that live as long as
the process and hardly any garbage, yet the collector makes over 100 passes over them while
they are built (tens of ms of a worker's startup). It is off during the import; what the
import built is then frozen (``gc.freeze``: never scanned again, so no scan copies its pages
into a forked child either) and the collector is back on before any command runs.
"""

from __future__ import annotations

import gc

from foundry.entrypoints import codecache
from foundry.entrypoints.drivers import import_redis


def main() -> None:
    """Run ``foundry``."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        codecache.install()
        import_redis()
        from foundry.entrypoints.cli import main as cli_main  # noqa: PLC0415 - with gc off
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    cli_main()
