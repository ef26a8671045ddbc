"""A real Label Studio server for integration tests and benchmarks (its own venv, loopback only).

``ensure_label_studio()`` creates ``<repo>/.venv-ls`` with ``label-studio==1.23.2`` once (about 1 GB,
a few minutes; progress is printed) and reuses it afterwards. :class:`LabelStudioServer` starts the
server on a free 127.0.0.1 port with a throw-away data dir and a fixed legacy token, and can be killed
and restarted on the same port and data (fault injection).

Back ends: SQLite in the data dir (Label Studio's default), or PostgreSQL when ``db_env`` carries the
settings Label Studio reads (``DJANGO_DB=default``, ``POSTGRE_*``; see ``pgcluster.PgDatabase``). The same
environment goes to ``label-studio init`` (members), which writes to the same database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

LS_VERSION = "1.23.2"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-ls"
MARKER = VENV / ".reviewdesk-installed"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Passw0rd!23"
ADMIN_TOKEN = "rd-test-admin-token-0001"


def say(msg: str) -> None:
    """Progress that shows even under pytest's output capture (CI logs)."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[label-studio fixture] {msg}\n")
    stream.flush()


def ensure_label_studio() -> Path:
    exe = VENV / "bin" / "label-studio"
    if MARKER.exists() and MARKER.read_text().strip() == f"label-studio=={LS_VERSION}" and exe.exists():
        return exe
    say(f"installing label-studio=={LS_VERSION} into {VENV} (once; ~1 GB, a few minutes)...")
    if VENV.exists():
        shutil.rmtree(VENV)
    py = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    started = time.monotonic()
    subprocess.run([py, "-m", "venv", str(VENV)], check=True)
    proc = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                           "--progress-bar", "off", f"label-studio=={LS_VERSION}"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise RuntimeError(f"Installing label-studio=={LS_VERSION} failed (pip exit {proc.returncode}):\n{tail}")
    if not exe.exists():
        raise RuntimeError(f"label-studio was installed but {exe} is missing")
    MARKER.write_text(f"label-studio=={LS_VERSION}\n")
    say(f"installed in {time.monotonic() - started:.0f} s")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Database settings Label Studio reads (also with a LABEL_STUDIO_ / HEARTEX_ prefix, which wins): never
# inherited from the caller's environment, so a server is on exactly the back end it was asked for.
DB_VARS = ("DJANGO_DB", "DATABASE_NAME", "POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST",
           "POSTGRE_PORT")


class LabelStudioServer:
    def __init__(self, data_dir: Path, port: int | None = None, token: str = ADMIN_TOKEN,
                 db_env: dict[str, str] | None = None) -> None:
        self.exe = ensure_label_studio()
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.token = token
        self.db_env = dict(db_env or {})
        self.backend = "postgres" if self.db_env else "sqlite"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"label-studio-{self.port}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(k, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        for k in DB_VARS:
            for prefix in ("", "LABEL_STUDIO_", "HEARTEX_"):
                env.pop(prefix + k, None)
        env.update(self.db_env)
        env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] = "true"
        env["LOG_LEVEL"] = "WARNING"
        env["DEBUG"] = "false"
        env["LATEST_VERSION_CHECK"] = "false"
        env["COLLECT_ANALYTICS"] = "false"
        env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] = "true"
        return env

    def start(self, timeout: float = 240.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [str(self.exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "-p", str(self.port),
               "--data-dir", str(self.data_dir), "--username", ADMIN_EMAIL, "--password", ADMIN_PASSWORD,
               "--user-token", self.token, "--enable-legacy-api-token"]
        say(f"starting Label Studio {LS_VERSION} ({self.backend}) on {self.url} (log: {self.log_path})")
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                     start_new_session=True, cwd=str(self.data_dir))
        log.close()
        self.wait_ready(timeout)
        say(f"ready in {time.monotonic() - started:.0f} s")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited with code {self.proc.returncode} during start-up; "
                                   f"last log lines:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "/api/projects/", headers={"Authorization": f"Token {self.token}"},
                                 timeout=5, proxies={"http": "", "https": ""})
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.5)
        raise RuntimeError(f"Label Studio did not become ready on {self.url} within {timeout:.0f} s ({last}); "
                           f"last log lines:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL the whole server process group (a crash, not a clean stop)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        self.proc = None

    def restart(self, timeout: float = 120.0) -> None:
        self.kill()
        self.start(timeout)

    def add_user(self, email: str, token: str, password: str = "Passw0rd!23") -> None:
        """A member of the admin's organisation (``label-studio init`` while the server runs)."""
        proc = subprocess.run([str(self.exe), "init", "--data-dir", str(self.data_dir), "--username", email,
                               "--password", password, "--user-token", token, "-q"],
                              env=self.env(), capture_output=True, text=True, check=False,
                              cwd=str(self.data_dir), timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"label-studio init for {email} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
