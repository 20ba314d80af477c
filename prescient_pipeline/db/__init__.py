"""Database: schema, migrations, engine and the embedded PostgreSQL."""
