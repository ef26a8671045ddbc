"""Media cache: every URL of the same bytes (``media_urls``: url -> sha256).

Revision ID: 0005
Revises: 0004

Additive. A file uploaded once can be referenced by several URLs (an upload path, a Local Storage path, a
presigned link): each maps to the one content-addressed file. ``app.sync.media`` created this table lazily
before this migration existed, hence IF NOT EXISTS. No foreign key on purpose: a future batch rebuild of
``media_cache`` under ``foreign_keys=ON`` must not cascade-delete the URL rows. ``last_used_at`` is indexed for
least-recently-used eviction.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE IF NOT EXISTS media_urls (url VARCHAR NOT NULL PRIMARY KEY, "
               "sha256 VARCHAR NOT NULL, seen_at VARCHAR NOT NULL)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_media_urls_sha256 ON media_urls (sha256)")
    op.execute("INSERT OR IGNORE INTO media_urls (url, sha256, seen_at) "
               "SELECT url, sha256, fetched_at FROM media_cache")
    op.execute("CREATE INDEX IF NOT EXISTS ix_media_cache_last_used ON media_cache (last_used_at)")


def downgrade() -> None:
    raise NotImplementedError("ReviewDesk stores are never downgraded; restore a backup instead")
