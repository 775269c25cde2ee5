"""Sessions and runs saved in SQLite (SQLAlchemy 2 + Alembic). Knows nothing of torch or Qt."""
