"""Reading Foundry's log records in tests (they reach ``caplog`` through stdlib logging)."""

from __future__ import annotations

import logging

import pytest


def foundry_messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """The messages of the ``foundry.*`` records at ``level`` or worse, in order."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("foundry") and record.levelno >= level
    ]
