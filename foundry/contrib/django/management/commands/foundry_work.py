"""``python manage.py foundry_work [foundry work options]``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand

from foundry.contrib.django.project import registry, worker_environment

WORKER_APP = "foundry.contrib.django.worker:app"


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no types
    """Replace this process with ``foundry work`` for ``settings.FOUNDRY['APP']``."""

    help = "Run foundry work for settings.FOUNDRY['APP'] (takes foundry work's options)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``foundry work``'s options, given to ``call_command`` as separate strings."""
        parser.add_argument("args", nargs="*")

    def run_from_argv(self, argv: list[str]) -> None:
        """From ``manage.py``: every word after the command name is ``foundry work``'s."""
        self.handle(*argv[2:])

    def handle(self, *args: str, **options: Any) -> None:
        """Check the registry loads, then exec ``foundry work`` with the project's settings."""
        registry()
        command = [sys.executable, "-m", "foundry.entrypoints.cli", "work", "--app", WORKER_APP]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [*command, *args], worker_environment())
