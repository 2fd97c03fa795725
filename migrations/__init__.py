"""Alembic migrations of the affdata store; shipped in the package and found at run time."""
