"""Every Python snippet of docs/*.md runs as written, on the memory backend, with stand-ins
only for what the snippet says is the user's own (their handlers, their database).

The README's snippets run on Redis, as a module and a worker, in tests/e2e/test_readme_guide.py;
the PostgreSQL ones in tests/postgres/test_docs_snippets.py; Django's settings.py snippet needs
a project, and the shop in examples/django (tests/e2e/test_examples.py) runs what it shows.
"""

from __future__ import annotations

import asyncio
import threading
import types
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

import foundry
from tests.commit_support import configure_django
from tests.doc_snippets import Snippet, snippets

#: Snippets run elsewhere, found by a line of theirs, and where.
RUN_ELSEWHERE = {
    "psycopg.connect(DATABASE_URL)": "tests/postgres/test_docs_snippets.py",
    "with Session(engine) as session:": "tests/postgres/test_docs_snippets.py",
    "connection=connection)": "tests/postgres/test_transactional_frameworks.py (Django)",
    'FOUNDRY = {"APP"': "a Django project: examples/django",
}

DOCS = [snippet for snippet in snippets() if snippet.page.startswith("docs/")]


def _elsewhere(snippet: Snippet) -> str | None:
    return next((where for line, where in RUN_ELSEWHERE.items() if line in snippet.code), None)


#: The snippets run here (the others are never collected: CI counts a skip as a failure).
RUN_HERE = [snippet for snippet in DOCS if _elsewhere(snippet) is None]


HANDLERS = """
@registry.job()
def send_welcome(user_id: int) -> None: ...


@registry.job()
def resize(image: int) -> None: ...


@registry.job()
def publish_album(album: int) -> None: ...


@registry.job()
def assemble_album(parts: list[str]) -> None: ...


@registry.job()
def alert(album: int = 0) -> None: ...


@registry.job()
def cleanup(album: int = 0) -> None: ...


@registry.job()
def fetch(album: int) -> None: ...
"""


class Anything:
    """A stand-in for the user's own objects (a payment gateway, a database session)."""

    def __getattr__(self, name: str) -> Anything:
        return self

    def __call__(self, *args: object, **kwargs: object) -> Anything:
        return self


@pytest.fixture
def scene(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What the docs' fragments take as given: a memory-backed ``fx``, a ``registry`` with
    the handlers they name, its ``dispatcher``, and the user's own objects."""
    for variable in ("REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("QUEUE_DRIVER", "memory")
    monkeypatch.setenv("CACHE_DRIVER", "memory")
    registry = foundry.JobRegistry()
    names: dict[str, Any] = {"__name__": "snippet", "foundry": foundry, "registry": registry}
    exec(HANDLERS, names)
    with foundry.connect() as fx:
        names.update(
            fx=fx,
            dispatcher=fx.dispatcher(registry),
            timedelta=timedelta,
            images=[1, 2, 3],
            album_id=9,
            a=9,
            **{name: Anything() for name in ("gateway", "send_receipt", "db", "engine", "session")},
        )
        yield names


def _flask(names: dict[str, Any], run: Callable[[], None]) -> None:
    from flask import Flask  # noqa: PLC0415
    from sqlalchemy import create_engine  # noqa: PLC0415
    from sqlalchemy.orm import scoped_session, sessionmaker  # noqa: PLC0415

    app = Flask("shop")
    app.config["FOUNDRY"] = {"QUEUE_DRIVER": "memory", "CACHE_DRIVER": "memory"}
    names.update(app=app, db_session=scoped_session(sessionmaker(create_engine("sqlite://"))))
    with app.test_request_context("/signup", method="POST"):
        run()


def _fastapi(names: dict[str, Any], run: Callable[[], None]) -> None:
    from fastapi.testclient import TestClient  # noqa: PLC0415

    run()
    with TestClient(names["app"]) as client:
        answer = client.post("/signup")
    assert answer.status_code == 200, answer.text
    assert list(answer.json()) == ["job"]


def _django_commit(names: dict[str, Any], run: Callable[[], None]) -> None:
    configure_django()
    created = types.SimpleNamespace(pk=7)
    objects = types.SimpleNamespace(create=lambda **fields: created)
    names.update(User=types.SimpleNamespace(objects=objects), email="a@b.c")
    run()
    assert names["fx"].queue.stats("default").ready == 1  # sent once the block committed


def _worked(names: dict[str, Any], run: Callable[[], None]) -> None:
    """A snippet that waits for results runs beside a stand-in worker: it completes each job
    of the memory queue (the scene's handlers return nothing) until the snippet is done."""
    queue, done = names["fx"].queue, threading.Event()
    request = foundry.ClaimRequest(["default"], lease=30, limit=10, wait=0.05)

    def work() -> None:
        while not done.is_set():
            leases = queue.claim(request)
            if leases:
                queue.complete_many(leases, [None] * len(leases))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        run()
    finally:
        done.set()
        worker.join()


#: How a snippet that needs its framework around it is run, found by a line of its.
FRAMEWORKS: dict[str, Callable[[dict[str, Any], Callable[[], None]], None]] = {
    "from foundry.contrib.flask import Foundry": _flask,
    "from foundry.contrib.fastapi import": _fastapi,
    "commit_hooks=foundry.DjangoCommitHooks()": _django_commit,
    "dispatcher.batch_results(batch_id, timeout=60)": _worked,
}


@pytest.mark.parametrize("snippet", RUN_HERE, ids=lambda snippet: snippet.name)
def test_each_python_snippet_of_the_docs_runs_as_written(
    snippet: Snippet, scene: dict[str, Any]
) -> None:
    code = compile(snippet.code, snippet.name, "exec")
    framework = next((run for line, run in FRAMEWORKS.items() if line in snippet.code), None)

    def run() -> None:
        exec(code, scene)
        main = scene.get("main")
        if main is not None and asyncio.iscoroutinefunction(main):
            asyncio.run(main())

    if framework is None:
        run()
    else:
        framework(scene, run)


def test_each_snippet_run_elsewhere_or_in_a_framework_is_still_on_a_page() -> None:
    every = "\n".join(snippet.code for snippet in DOCS)

    gone = [line for line in (*RUN_ELSEWHERE, *FRAMEWORKS) if line not in every]

    assert gone == []
