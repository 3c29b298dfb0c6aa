"""A Django app on PostgreSQL (psycopg 3) dispatching inside ``transaction.atomic`` with
``connection=django.db.connection``; run in a process of its own (``python -m``), since a test
process configures Django once, on SQLite. Prints the ids of the job rolled back and of the
one committed. Environment: the queue's (``QUEUE_DRIVER``, ``DATABASE_URL``,
``DATABASE_SCHEMA``).
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

import foundry
from tests.e2e.apps import add, registry


class Rollback(Exception):
    """Raised to leave an ``atomic`` block by rolling it back."""


def _configure(url: str) -> None:
    parts = conninfo_to_dict(url)
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.get("dbname", ""),
        "USER": parts.get("user", ""),
        "PASSWORD": parts.get("password", ""),
        "HOST": parts.get("host", ""),
        "PORT": parts.get("port", ""),
    }
    settings.configure(DATABASES={"default": database}, INSTALLED_APPS=[], USE_TZ=True)
    django.setup()


def main() -> None:
    _configure(os.environ["DATABASE_URL"])
    from django.db import connection, transaction  # noqa: PLC0415 - once Django is set up

    with foundry.connect() as fx:
        dispatcher = fx.dispatcher(registry)
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("CREATE TEMP TABLE orders (id integer)")
                rolled_back = dispatcher.dispatch(add, {"a": 1, "b": 1}, connection=connection)
                raise Rollback
        except Rollback:
            pass
        with transaction.atomic():
            committed = dispatcher.dispatch(add, {"a": 2, "b": 2}, connection=connection)
    print(rolled_back, committed)


if __name__ == "__main__":
    main()
