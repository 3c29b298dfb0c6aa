"""Foundry in a Flask app (extra ``foundry[flask]``): an extension object.

::

    from foundry.contrib.flask import Foundry

    hooks = foundry.SqlAlchemyCommitHooks(db_session)  # a scoped_session
    jobs = Foundry(registry, commit_hooks=hooks)
    jobs.init_app(app)  # or Foundry(registry, app=app, commit_hooks=hooks)

    @app.post("/signup")
    def signup():
        return {"job": jobs.dispatcher.dispatch(send_welcome, {"user_id": 7})}

``app.config["FOUNDRY"]`` may hold Foundry's environment variables (``REDIS_URL``,
``QUEUE_PREFIX``, ...), which win over the process environment.
"""

from __future__ import annotations

from flask import Flask, current_app

import foundry

_KEY = "foundry"


class Foundry:
    """The extension: one ``foundry.Connection`` and ``Dispatcher`` per app."""

    def __init__(
        self,
        registry: foundry.JobRegistry,
        *,
        app: Flask | None = None,
        commit_hooks: foundry.CommitHooks | None = None,
    ) -> None:
        self.registry = registry
        self._commit_hooks = commit_hooks
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Connect ``app`` (settings from ``app.config["FOUNDRY"]`` over the environment).

        Raises ``ConfigurationError`` naming a key of ``FOUNDRY`` that is no setting (a typo
        would leave the environment's value in force without a word), and when Foundry is
        already installed on ``app`` (a second connection would replace the first one,
        leaving it open: one extension per app, as Flask's extensions have)."""
        if _KEY in app.extensions:
            raise foundry.ConfigurationError(
                f"Foundry is already installed on the app {app.name!r}: call init_app(app) "
                "once per app, where the app is made, and use that extension object"
            )
        given = app.config.get("FOUNDRY", {})
        connection = foundry.connect(foundry.Settings.over_env(given, "app.config['FOUNDRY']"))
        dispatcher = connection.dispatcher(self.registry, commit_hooks=self._commit_hooks)
        app.extensions[_KEY] = (connection, dispatcher)

    @property
    def connection(self) -> foundry.Connection:
        """The current app's ``foundry.Connection``."""
        connection: foundry.Connection = _installed()[0]
        return connection

    @property
    def dispatcher(self) -> foundry.Dispatcher:
        """The current app's ``Dispatcher``."""
        dispatcher: foundry.Dispatcher = _installed()[1]
        return dispatcher

    @property
    def cache(self) -> foundry.CachePort:
        """The current app's cache."""
        return self.connection.cache


def _installed() -> tuple[foundry.Connection, foundry.Dispatcher]:
    try:
        installed: tuple[foundry.Connection, foundry.Dispatcher] = current_app.extensions[_KEY]
    except KeyError:
        raise foundry.ConfigurationError(
            f"Foundry is not installed on the app {current_app.name!r}: call "
            "Foundry(registry).init_app(app) (or Foundry(registry, app=app)) where the app is made"
        ) from None
    return installed
