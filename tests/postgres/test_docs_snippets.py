"""docs/postgres.md's enqueue-in-your-transaction snippets run as written: the user's row
and the job commit together, with a psycopg connection and with a SQLAlchemy session."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import foundry
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect
from foundry.adapters.postgres.migrator import Migrator
from tests.doc_snippets import Snippet, snippets
from tests.postgres_server import ThrowawayDatabase

pytestmark = pytest.mark.postgres

PAGE = [snippet for snippet in snippets() if snippet.page == "docs/postgres.md"]


def _the(line: str) -> Snippet:
    (found,) = [snippet for snippet in PAGE if line in snippet.code]
    return found


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))


@pytest.fixture
def app(
    postgres_database: ThrowawayDatabase, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A migrated database with the app's ``users`` table, the environment the page sets
    (``QUEUE_DRIVER=postgres``, ``DATABASE_URL``) and the app's ``myapp.jobs`` module."""
    url = postgres_database.url()
    Migrator(lambda: connect(PostgresSettings(url=url)), "foundry").migrate()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email varchar(254))")
    for variable in ("REDIS_URL", "CACHE_DRIVER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("QUEUE_DRIVER", "postgres")
    monkeypatch.setenv("DATABASE_URL", url)
    registry = foundry.JobRegistry()

    @registry.job(name="mail.welcome", queue="mail")
    def send_welcome(user_id: int) -> None: ...

    jobs = types.ModuleType("myapp.jobs")
    jobs.registry = registry  # type: ignore[attr-defined]
    jobs.send_welcome = send_welcome  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "myapp", types.ModuleType("myapp"))
    monkeypatch.setitem(__import__("sys").modules, "myapp.jobs", jobs)
    with foundry.connect() as fx:
        yield {"url": url, "fx": fx, "registry": registry, "send_welcome": send_welcome}


def _welcomed(fx: foundry.Connection) -> int:
    return fx.queue.stats("mail").ready


def _emails(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT email FROM users ORDER BY id")]


def test_the_psycopg_snippet_commits_the_user_and_the_job_together(app: dict[str, Any]) -> None:
    names: dict[str, Any] = {"__name__": "snippet", "DATABASE_URL": app["url"], "email": "a@b.c"}

    exec(compile(_the("psycopg.connect(DATABASE_URL)").code, "postgres.md", "exec"), names)
    names["fx"].close()

    assert _emails(app["url"]) == ["a@b.c"]
    assert _welcomed(app["fx"]) == 1


def test_the_sqlalchemy_snippet_commits_the_user_and_the_job_together(
    app: dict[str, Any],
) -> None:
    engine = create_engine(app["url"].replace("postgresql://", "postgresql+psycopg://", 1))
    names: dict[str, Any] = {
        "__name__": "snippet",
        "engine": engine,
        "User": User,
        "email": "a@b.c",
        "dispatcher": app["fx"].dispatcher(app["registry"]),
        "send_welcome": app["send_welcome"],
    }
    try:
        exec(compile(_the("with Session(engine)").code, "postgres.md", "exec"), names)
    finally:
        engine.dispose()

    assert _emails(app["url"]) == ["a@b.c"]
    assert _welcomed(app["fx"]) == 1
