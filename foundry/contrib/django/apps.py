"""The Django app: checks ``settings.FOUNDRY`` and prepares the project's Foundry once."""

from __future__ import annotations

from django.apps import AppConfig


class FoundryConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``"foundry.contrib.django"`` in ``INSTALLED_APPS``."""

    name = "foundry.contrib.django"
    label = "foundry"
    verbose_name = "Foundry"

    def ready(self) -> None:
        """Read ``settings.FOUNDRY`` and load the registry (a bad value fails at startup)."""
        from foundry.contrib.django import project  # noqa: PLC0415

        project.prepare()
