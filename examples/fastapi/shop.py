"""A FastAPI shop: a customer and a welcome job in one SQLAlchemy ``AsyncSession`` transaction,
dispatched through the asyncio producer and sent once the transaction commits."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import foundry
from foundry.contrib.fastapi import Dispatcher, lifespan


def database_url() -> URL:
    """``SHOP_DATABASE_URL`` (a file of this folder by default) with an asyncio driver: a
    ``sqlite://`` URL is served by aiosqlite, a ``postgresql://`` one by psycopg."""
    url = make_url(os.environ.get("SHOP_DATABASE_URL", "sqlite:///shop.sqlite3"))
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
    return url.set(drivername=drivers.get(url.drivername, url.drivername))


engine = create_async_engine(database_url())
#: ``expire_on_commit=False``: an object read after its commit needs no new query (a lazy
#: load is an error under asyncio).
Session = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)


registry = foundry.JobRegistry(after_commit=True)


@registry.job(name="shop.welcome", queue="mail")
async def send_welcome(customer_id: int) -> str:
    """Greet a new customer (an ``async def`` handler; the row is committed by now)."""
    async with Session() as session:
        customer = await session.get_one(Customer, customer_id)
        return f"welcome, {customer.email}"


#: The session the current request works in: the commit hooks ask it which to wait for.
current_session: ContextVar[AsyncSession] = ContextVar("current_session")
commit_hooks = foundry.SqlAlchemyCommitHooks(current_session.get)
foundry_lifespan = lifespan(registry, commit_hooks=commit_hooks)


@asynccontextmanager
async def shop_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Make the example's one table if missing (an app migrates), then run Foundry's
    lifespan; close the engine's connections at the end."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with foundry_lifespan(app) as state:
        yield state
    await engine.dispose()


app = FastAPI(lifespan=shop_lifespan)


class PaymentRefused(Exception):
    pass


class Signup(BaseModel):
    email: str
    card: str = "ok"


@app.post("/signup", status_code=201)
async def signup(form: Signup, dispatcher: Dispatcher) -> dict[str, object]:
    try:
        async with Session() as session, session.begin():
            current_session.set(session)
            customer = Customer(email=form.email)
            session.add(customer)
            await session.flush()  # the customer's id
            # In the transaction: sent when it commits (the registry's after_commit=True).
            job_id = await dispatcher.dispatch(send_welcome, {"customer_id": customer.id})
            if form.card == "declined":
                raise PaymentRefused("card declined")
    except PaymentRefused as refused:
        raise HTTPException(status_code=402, detail=str(refused)) from None
    return {"customer": customer.id, "job": job_id}
