"""A FastAPI shop: a customer and a welcome job in one SQLAlchemy transaction, dispatched
through the asyncio producer once the transaction commits."""

from __future__ import annotations

import os
from contextvars import ContextVar

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import foundry
from foundry.contrib.fastapi import Dispatcher, lifespan

engine = create_engine(os.environ.get("SHOP_DATABASE_URL", "sqlite:///shop.sqlite3"))


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)


Base.metadata.create_all(engine)  # the example's one table, made if missing (an app migrates)

registry = foundry.JobRegistry(after_commit=True)


@registry.job(name="shop.welcome", queue="mail")
async def send_welcome(customer_id: int) -> str:
    """Greet a new customer (an ``async def`` handler; the row is committed by now)."""
    with Session(engine) as session:
        customer = session.get_one(Customer, customer_id)
        return f"welcome, {customer.email}"


#: The session the current request works in: the commit hooks ask it which to wait for.
current_session: ContextVar[Session] = ContextVar("current_session")
commit_hooks = foundry.SqlAlchemyCommitHooks(current_session.get)

app = FastAPI(lifespan=lifespan(registry, commit_hooks=commit_hooks))


class PaymentRefused(Exception):
    pass


class Signup(BaseModel):
    email: str
    card: str = "ok"


@app.post("/signup", status_code=201)
async def signup(form: Signup, dispatcher: Dispatcher) -> dict[str, object]:
    try:
        with Session(engine) as session, session.begin():
            current_session.set(session)
            customer = Customer(email=form.email)
            session.add(customer)
            session.flush()
            customer_id = customer.id
            job_id = await dispatcher.dispatch(send_welcome, {"customer_id": customer_id})
            if form.card == "declined":
                raise PaymentRefused("card declined")
    except PaymentRefused as refused:
        raise HTTPException(status_code=402, detail=str(refused)) from None
    return {"customer": customer_id, "job": job_id}
