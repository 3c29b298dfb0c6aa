"""The FastAPI and Flask integrations, with the real frameworks: a missing setup or a setting
that does not exist is said with the fix, not an AttributeError or silence."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask

import foundry
from foundry.contrib import fastapi as foundry_fastapi
from foundry.contrib.flask import Foundry

registry = foundry.JobRegistry()


@registry.job(name="web.noop")
def noop() -> None:
    pass


def test_a_fastapi_app_without_the_lifespan_is_told_to_add_it() -> None:
    app = FastAPI()

    @app.post("/jobs")
    async def enqueue(dispatcher: foundry_fastapi.Dispatcher) -> dict[str, str]:
        return {"job": await dispatcher.dispatch(noop, {})}

    fix = r"lifespan imported from foundry\.contrib\.fastapi"
    with pytest.raises(foundry.ConfigurationError, match=fix):
        TestClient(app).post("/jobs")


def test_a_fastapi_app_with_the_lifespan_dispatches() -> None:
    app = FastAPI(lifespan=foundry_fastapi.lifespan(registry, settings="memory://"))

    @app.post("/jobs")
    async def enqueue(dispatcher: foundry_fastapi.Dispatcher) -> dict[str, str]:
        return {"job": await dispatcher.dispatch(noop, {})}

    with TestClient(app) as client:
        reply = client.post("/jobs")

    assert reply.status_code == 200
    assert reply.json()["job"]


def test_a_flask_setting_that_does_not_exist_is_refused_naming_it() -> None:
    app = Flask(__name__)
    app.config["FOUNDRY"] = {"QUEUE_DRIVER": "memory", "REDIS_URl": "redis://10.0.0.5:6379/0"}

    with pytest.raises(
        foundry.ConfigurationError, match="no setting named REDIS_URl: use"
    ) as raised:
        Foundry(registry, app=app)

    assert "REDIS_URL" in str(raised.value)


def test_a_flask_foundry_config_that_is_not_a_dict_is_refused() -> None:
    app = Flask(__name__)
    app.config["FOUNDRY"] = "redis://10.0.0.5:6379/0"

    with pytest.raises(foundry.ConfigurationError, match="must be a dict of settings"):
        Foundry(registry, app=app)


def test_a_flask_app_the_extension_was_not_installed_on_is_told_how() -> None:
    extension = Foundry(registry)
    installed, other = Flask("installed"), Flask("other")
    installed.config["FOUNDRY"] = {"QUEUE_DRIVER": "memory"}
    extension.init_app(installed)

    with installed.app_context():
        assert extension.dispatcher.dispatch(noop, {})
    with other.app_context(), pytest.raises(foundry.ConfigurationError, match=r"init_app\(app\)"):
        extension.dispatcher  # noqa: B018 - the property is the call under test


def test_a_mounted_fastapi_app_dispatches_with_the_main_apps_lifespan() -> None:
    app = FastAPI(lifespan=foundry_fastapi.lifespan(registry, settings="memory://"))
    api = FastAPI()

    @api.post("/jobs")
    async def enqueue(dispatcher: foundry_fastapi.Dispatcher) -> dict[str, str]:
        return {"job": await dispatcher.dispatch(noop, {})}

    app.mount("/api", api)  # Starlette runs no lifespan of a mounted app
    with TestClient(app) as client:
        reply = client.post("/api/jobs")

    assert reply.status_code == 200
    assert reply.json()["job"]


def test_a_second_init_app_on_one_flask_app_is_refused_and_keeps_the_first_connection() -> None:
    extension = Foundry(registry)
    app = Flask("twice")
    app.config["FOUNDRY"] = {"QUEUE_DRIVER": "memory"}
    extension.init_app(app)
    first = app.extensions["foundry"]

    with pytest.raises(foundry.ConfigurationError, match="already installed on the app 'twice'"):
        Foundry(registry).init_app(app)

    assert app.extensions["foundry"] is first
    with app.app_context():
        assert extension.dispatcher.dispatch(noop, {})
