"""The ``foundry`` console script: the CLI, without loguru's default sink at import, and
without the garbage collector's passes over its import.

loguru adds a stderr sink when it is first imported unless ``LOGURU_AUTOINIT`` is off; the
CLI replaces every sink before it logs (``configure_logging``), and building that unused sink
costs ~50 M instructions, about 5 % of a worker's startup. The variable is set for this
import only, so subprocesses that handlers start keep loguru's default.

Importing the CLI, a worker's app included, leaves some 50,000 objects that live as long as
the process and hardly any garbage, yet the collector makes over 100 passes over them while
they are built (tens of ms of a worker's startup). It is off during the import; what the
import built is then frozen (``gc.freeze``: never scanned again, so no scan copies its pages
into a forked child either) and the collector is back on before any command runs.
"""

from __future__ import annotations

import gc
import os

_AUTOINIT = "LOGURU_AUTOINIT"


def main() -> None:
    """Run ``foundry``."""
    ours = _AUTOINIT not in os.environ
    if ours:
        os.environ[_AUTOINIT] = "False"
    collecting = gc.isenabled()
    gc.disable()
    try:
        from foundry.entrypoints.cli import main as cli_main  # noqa: PLC0415 - after the variable is set
    finally:
        if ours:
            del os.environ[_AUTOINIT]
        gc.freeze()
        if collecting:
            gc.enable()
    cli_main()
