"""The project's Foundry, built once per process from ``settings.FOUNDRY``."""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache as once
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

import foundry


@once
def _config() -> tuple[str, foundry.Settings]:
    given: dict[str, Any] = dict(getattr(settings, "FOUNDRY", None) or {})
    app = given.pop("APP", None)
    if not isinstance(app, str) or ":" not in app:
        raise foundry.ConfigurationError(
            "settings.FOUNDRY['APP'] must name the registry as 'module:attribute', "
            "like FOUNDRY = {'APP': 'shop.jobs:registry', 'REDIS_URL': 'redis://...'}"
        )
    return app, foundry.Settings.over_env(given, "settings.FOUNDRY")


@once
def registry() -> foundry.JobRegistry:
    """The registry ``settings.FOUNDRY['APP']`` names, with ``DjangoDatabases`` in use."""
    from foundry.contrib.django.databases import DjangoDatabases  # noqa: PLC0415

    spec = _config()[0]
    module, _, attribute = spec.partition(":")
    found = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(found, foundry.JobRegistry):
        raise foundry.ConfigurationError(
            f"settings.FOUNDRY['APP'] = {spec!r} is not a foundry.JobRegistry"
        )
    found.use(DjangoDatabases())
    return found


@once
def connection() -> foundry.Connection:
    """This process's ``foundry.Connection``, from ``settings.FOUNDRY`` over the environment."""
    return foundry.connect(_config()[1])


@once
def dispatcher() -> foundry.Dispatcher:
    """The registry's ``Dispatcher``, which can dispatch after the ``atomic`` block commits."""
    return connection().dispatcher(registry(), commit_hooks=foundry.DjangoCommitHooks())


@once
def async_dispatcher() -> foundry.AsyncDispatcher:
    """The registry's ``AsyncDispatcher``, for async views: awaited, it never blocks the loop.

    Django opens no ``atomic`` block on the event loop's thread (its ORM runs in a worker
    thread there, each ``acreate``/``asave`` committed on return), so a dispatch after commit
    from an async view is sent at once, as ``transaction.on_commit`` runs a callback outside
    ``atomic``. Inside an ``atomic`` block run with ``sync_to_async``, dispatch with
    ``dispatcher()``: that block's thread is not the loop's.
    """
    return connection().async_dispatcher(registry(), commit_hooks=foundry.DjangoCommitHooks())


def cache() -> foundry.CachePort:
    """The configured cache."""
    return connection().cache


def prepare() -> None:
    """Check the settings and load the registry (the app config's ``ready``)."""
    registry()


def worker_environment() -> dict[str, str]:
    """The environment ``foundry work`` needs to see this project's settings and import its
    modules (the directory of ``manage.py`` goes first on ``PYTHONPATH``)."""
    given = dict(getattr(settings, "FOUNDRY", None) or {})
    given.pop("APP", None)
    env = {**os.environ, **{key: str(value) for key, value in given.items()}}
    project = os.path.abspath(sys.path[0] or os.curdir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
    return env


def _settings_changed(*, setting: str, **_: Any) -> None:
    """``override_settings(FOUNDRY=...)`` (a test's): the next ``connection()``,
    ``dispatcher()`` and ``async_dispatcher()`` are built from the new value, and the old
    connection is closed."""
    if setting != "FOUNDRY":
        return
    _config.cache_clear()
    if connection.cache_info().currsize:
        connection().close()
    connection.cache_clear()
    dispatcher.cache_clear()
    async_dispatcher.cache_clear()


setting_changed.connect(_settings_changed)
