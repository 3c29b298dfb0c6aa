"""Foundry in a Django project (extra ``foundry[django]``).

Add ``"foundry.contrib.django"`` to ``INSTALLED_APPS`` and give ``settings.FOUNDRY``: ``APP``,
the registry as ``"module:attribute"``, and any of Foundry's environment variables
(``REDIS_URL``, ``QUEUE_PREFIX``, ...), which win over the process environment::

    FOUNDRY = {"APP": "shop.jobs:registry", "REDIS_URL": "redis://127.0.0.1:6379/0"}

Then ``dispatcher()`` dispatches after the current ``atomic`` block commits whenever the
registry (``JobRegistry(after_commit=True)``) or the call (``after_commit=True``) says so;
``await async_dispatcher().dispatch(...)`` is its counterpart for async views; and
``python manage.py foundry_work`` runs ``foundry work`` for the registry, with Django set up in
the worker and its database connections handled per child and per job
(``DjangoDatabases``).
"""

from __future__ import annotations

from foundry.contrib.django.databases import DjangoDatabases
from foundry.contrib.django.project import (
    async_dispatcher,
    cache,
    connection,
    dispatcher,
    registry,
)

__all__ = ["DjangoDatabases", "async_dispatcher", "cache", "connection", "dispatcher", "registry"]
