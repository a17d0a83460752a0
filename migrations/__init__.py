"""Alembic migrations of the dashboard's database; run them with `miles db upgrade` (see `server.migrate`)."""
