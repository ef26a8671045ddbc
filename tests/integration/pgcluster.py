"""A throw-away PostgreSQL database for Label Studio (integration tests, ``bench_sync.py --backend postgres``).

The cluster itself is not ours: ``scripts/pg_test_cluster.sh`` (as root) installs and starts a local one on
127.0.0.1 and creates the test role. Here, per session, :class:`PgDatabase` creates a database with a unique
name through that role, hands Label Studio the settings it reads (``DJANGO_DB``, ``POSTGRE_*``), and drops the
database at the end. Stale databases of earlier sessions whose process is gone are dropped on the way.

Settings from the environment: ``RD_PG_HOST`` (127.0.0.1), ``RD_PG_PORT`` (5432), ``RD_PG_USER``
(reviewdesk_test), ``RD_PG_PASSWORD`` (reviewdesk_test).

The driver lives in Label Studio's own venv (``psycopg``, a dependency of the pinned Label Studio), so the
SQL here runs through ``.venv-ls/bin/python``; ReviewDesk itself never talks to PostgreSQL.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

HOW_TO = "run `sudo bash scripts/pg_test_cluster.sh` (installs/starts a loopback PostgreSQL and the test role)"
DB_PREFIX = "rdtest_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# Runs inside .venv-ls: connection from the PG* environment, one action, JSON on stdout.
_SQL = r"""
import json, os, sys
import psycopg
from psycopg import sql
action, name = sys.argv[1], sys.argv[2]
out = {}
with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5) as c:
    if action == "check":
        out["version"] = c.execute("SHOW server_version").fetchone()[0]
        out["createdb"] = c.execute("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    elif action == "create":
        c.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(name)))
    elif action == "drop":
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    elif action == "list":
        out["names"] = [r[0] for r in c.execute(
            "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname = current_user AND d.datname LIKE %s", (name + "%",))]
print(json.dumps(out))
"""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be used; the message is one line saying what is wrong and how to fix it."""


@dataclass(frozen=True)
class PgSettings:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "reviewdesk_test"
    password: str = "reviewdesk_test"

    @classmethod
    def from_env(cls) -> PgSettings:
        return cls(host=os.environ.get("RD_PG_HOST", cls.host), port=int(os.environ.get("RD_PG_PORT", cls.port)),
                   user=os.environ.get("RD_PG_USER", cls.user),
                   password=os.environ.get("RD_PG_PASSWORD", cls.password))

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class PgDatabase:
    """One database for one session. ``create()`` checks the cluster first (``PostgresUnavailable``)."""

    def __init__(self, python: Path, settings: PgSettings | None = None, name: str | None = None) -> None:
        self.python = Path(python)
        self.settings = settings or PgSettings.from_env()
        self.name = name or f"{DB_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self.created = False

    def _run(self, action: str, name: str = "") -> dict:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=s.host, PGPORT=str(s.port), PGUSER=s.user, PGPASSWORD=s.password,
                   PGAPPNAME="reviewdesk-tests")
        proc = subprocess.run([str(self.python), "-c", _SQL, action, name], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        if proc.returncode != 0:
            lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
            raise RuntimeError(lines[-1] if lines else f"exit {proc.returncode}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def check(self) -> str:
        """The server version; raises :class:`PostgresUnavailable` with a one-line reason + fix."""
        s = self.settings
        try:
            with socket.create_connection((s.host, s.port), timeout=3):
                pass
        except OSError as exc:
            raise PostgresUnavailable(
                f"PostgreSQL-backed tests need a local cluster, but nothing answers on {s.host}:{s.port} "
                f"({exc.strerror or exc}): {HOW_TO}") from None
        try:
            info = self._run("check")
        except Exception as exc:  # noqa: BLE001 - authentication, missing role, missing driver
            if "No module named" in str(exc):
                raise PostgresUnavailable(f"PostgreSQL-backed tests: {self.python} has no PostgreSQL driver ({exc}); Label Studio "
                                          f"1.23.2 brings psycopg: reinstall .venv-ls") from None
            raise PostgresUnavailable(f"PostgreSQL-backed tests: {s.host}:{s.port} refused the test role {s.user!r} "
                                      f"({exc}): {HOW_TO}") from None
        if not info.get("createdb"):
            raise PostgresUnavailable(f"PostgreSQL-backed tests: role {s.user!r} may not create databases: {HOW_TO}")
        return str(info["version"])

    def create(self) -> str:
        version = self.check()
        self.drop_stale()
        self._run("create", self.name)
        self.created = True
        return version

    def drop(self) -> None:
        if self.created:
            self._run("drop", self.name)
            self.created = False

    def drop_stale(self) -> list[str]:
        """Databases of earlier sessions on this machine whose process is gone (a killed run leaves them)."""
        if self.settings.host not in LOOPBACK:
            return []
        dropped = []
        for name in self._run("list", DB_PREFIX).get("names", []):
            try:
                pid = int(name[len(DB_PREFIX):].split("_", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or _alive(pid):
                continue
            try:
                self._run("drop", name)
                dropped.append(name)
            except RuntimeError:
                pass
        return dropped

    def label_studio_env(self) -> dict[str, str]:
        """What Label Studio reads to use this database instead of its SQLite file."""
        s = self.settings
        return {"DJANGO_DB": "default", "POSTGRE_NAME": self.name, "POSTGRE_USER": s.user,
                "POSTGRE_PASSWORD": s.password, "POSTGRE_HOST": s.host, "POSTGRE_PORT": str(s.port)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
