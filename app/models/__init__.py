"""Local store: SQLAlchemy schema, Alembic migrations, labeling-config parser, LS JSON codec (no Qt)."""
