"""A Flask shop: a customer and a welcome job in one SQLAlchemy transaction, the job sent once
the transaction commits."""

from __future__ import annotations

import os

from flask import Flask, request
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker

import foundry
from foundry.contrib.flask import Foundry

engine = create_engine(os.environ.get("SHOP_DATABASE_URL", "sqlite:///shop.sqlite3"))
#: One session per request (per thread), removed when the request ends.
db_session = scoped_session(sessionmaker(engine))


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)


registry = foundry.JobRegistry(after_commit=True)


@registry.job(name="shop.welcome", queue="mail")
def send_welcome(customer_id: int) -> str:
    """Greet a new customer; the row is committed by now."""
    return f"welcome, {db_session.get_one(Customer, customer_id).email}"


jobs = Foundry(registry, commit_hooks=foundry.SqlAlchemyCommitHooks(db_session))


class PaymentRefused(Exception):
    pass


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["FOUNDRY"] = {"QUEUE_PREFIX": os.environ.get("QUEUE_PREFIX", "shop")}
    Base.metadata.create_all(engine)  # the example's one table, made if missing (an app migrates)
    jobs.init_app(app)
    app.teardown_appcontext(lambda _: db_session.remove())

    @app.post("/signup")
    def signup() -> tuple[dict[str, object], int]:
        try:
            with db_session.begin():
                customer = Customer(email=request.form["email"])
                db_session.add(customer)
                db_session.flush()
                customer_id = customer.id
                job_id = jobs.dispatcher.dispatch(send_welcome, {"customer_id": customer_id})
                if request.form.get("card") == "declined":
                    raise PaymentRefused("card declined")
        except PaymentRefused as refused:
            return {"error": str(refused)}, 402
        return {"customer": customer_id, "job": job_id}, 201

    return app
