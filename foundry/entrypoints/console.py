"""The ``foundry`` console script: the CLI, without loguru's default sink at import.

loguru adds a stderr sink when it is first imported unless ``LOGURU_AUTOINIT`` is off; the
CLI replaces every sink before it logs (``configure_logging``), and building that unused sink
costs ~50 M instructions, about 5 % of a worker's startup. The variable is set for this
import only, so subprocesses that handlers start keep loguru's default.
"""

from __future__ import annotations

import os

_AUTOINIT = "LOGURU_AUTOINIT"


def main() -> None:
    """Run ``foundry``."""
    ours = _AUTOINIT not in os.environ
    if ours:
        os.environ[_AUTOINIT] = "False"
    try:
        from foundry.entrypoints.cli import main as cli_main  # noqa: PLC0415 - after the variable is set
    finally:
        if ours:
            del os.environ[_AUTOINIT]
    cli_main()
