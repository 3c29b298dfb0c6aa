"""``foundry work --app foundry.contrib.django.worker:app``: Django set up, then its registry."""

from __future__ import annotations

from typing import Any

import django

import foundry


def app(container: Any) -> foundry.JobRegistry:
    """Set Django up (``DJANGO_SETTINGS_MODULE``) and return ``settings.FOUNDRY['APP']``."""
    django.setup()
    from foundry.contrib.django.project import registry  # noqa: PLC0415

    return registry()
