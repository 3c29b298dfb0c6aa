"""Django's database connections in a pool child."""

from __future__ import annotations

from django.db import close_old_connections, connections

import foundry


class DjangoDatabases(foundry.Middleware):
    """Per-process and per-job care of Django's connections, as Django gives each request.

    A forked child forgets the connections it inherited without closing them (closing would
    end the parent's session on the shared socket) and opens its own on first use; each job
    starts and ends by closing connections that are broken or past ``CONN_MAX_AGE``.
    """

    def after_fork(self) -> None:
        """Drop the parent's connections in this child."""
        for connection in connections.all(initialized_only=True):
            connection.connection = None

    def before_job(self, job: foundry.JobContext) -> None:
        """Close unusable or expired connections before the handler."""
        close_old_connections()

    def after_job(self, job: foundry.JobContext, outcome: foundry.JobOutcome) -> None:
        """Close unusable or expired connections after the handler."""
        close_old_connections()
