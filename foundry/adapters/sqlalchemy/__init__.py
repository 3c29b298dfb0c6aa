"""SQLAlchemy's side of Foundry's ports (extra ``foundry[sqlalchemy]``)."""
