"""Qt-free services. Every state change is one transaction returning :class:`Changes`;
reads return frozen dataclasses (never ORM objects), safe to hand across threads."""

from app.services.changes import Changes

__all__ = ["Changes"]
