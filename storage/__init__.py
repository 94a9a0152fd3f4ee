"""Database tables, repositories and migrations (SQLite by default, PostgreSQL from DATABASE_URL)."""
