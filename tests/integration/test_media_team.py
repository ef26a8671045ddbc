"""Media a team really has, against a real Label Studio 1.23.2: files uploaded to the server, Local Storage
files it serves, and cloud-storage URIs it cannot resolve without a connected storage. Pulled media are
read from the cache with the server out of reach; the token never goes to another origin.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models.schema import MediaCache
from app.services.media import media_refs, resolve_media
from app.services.projects import ProjectService
from app.services.sync import SyncService
from app.sync import media as cache
from app.sync.client import LSClient
from app.sync.errors import NotFoundError, OfflineError, RequestError, SyncError
from tests.integration.conftest import DEMO, DIMENSIONS
from tests.integration.helpers import local_project
from tests.unit.sync.test_token_origin import Loopback

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shown_offline(store, ls_project: int) -> dict[str, str]:
    """ref -> sniffed format of every media reference of the project, resolved the way the review view does,
    with the server out of reach (a client on a closed port; the lookup the GUI registers)."""
    port = _closed_port()
    offline = SyncService(store, client_factory=lambda _u, tok, ca: LSClient(
        f"http://127.0.0.1:{port}", tok, ca_bundle=ca, retries=0, timeout=(1.0, 1.0)))
    server_url = offline.servers()[0].url
    with pytest.raises(OfflineError):
        offline.pull(server_url, ls_project)
    unregister = offline.register_media_lookup()
    assert unregister is not None
    try:
        ps = ProjectService(store)
        pid = local_project(store, ls_project)
        cfg = ps.config(pid)
        root = ps.media_root(pid)
        out: dict[str, str] = {}
        for data in ps.task_data([row.id for row in ps.task_page(pid, 0, 1000)]):
            for ref in media_refs(data, cfg):
                if ref.is_file:
                    r = resolve_media(ref, root)
                    out[str(ref.ref)] = (r.format or "?") if r.ok else f"error: {r.error}"
        return out
    finally:
        unregister()


def test_uploaded_media_land_in_the_cache_and_show_offline(ls, sync_service, rd_store):
    ls_pid = ls.projects["regions"]
    out = sync_service.pull(ls.url, ls_pid)
    server_tasks = ls.tasks(ls_pid)
    refs = [t["data"]["image"] for t in server_tasks]
    assert len(refs) == 4 and all(r.startswith("/data/upload/") for r in refs), refs
    assert (out.report.media_fetched, out.report.media_failed) == (4, 0)
    for ref in refs:  # the cached bytes are the server's bytes
        path = cache.lookup(rd_store, ref, [ls.url])
        assert path is not None, ref
        served = ls.api().get(ls.url + ref, timeout=60)
        assert served.status_code == 200 and path.read_bytes() == served.content
        assert served.content.startswith(PNG_MAGIC)
    shown = _shown_offline(rd_store, ls_pid)
    assert shown == dict.fromkeys(refs, "png")
    # a second pull fetches nothing again
    again = sync_service.pull(ls.url, ls_pid, full=True)
    assert again.report.media_fetched == 0


def test_local_storage_files_served_by_the_server(ls, sync_service, rd_store, tmp_path):
    folder = tmp_path / "team-share" / "screens"
    folder.mkdir(parents=True)
    sources = sorted((DEMO / "media").glob("screen_0*.png"))[:2]
    for f in sources:
        (folder / f.name).write_bytes(f.read_bytes())
    ls_pid = ls.create_project("Local storage media", DIMENSIONS["regions"])
    storage = ls.call("POST", "/api/storages/localfiles/", json={
        "project": ls_pid, "title": "team share", "path": str(folder), "regex_filter": r".*\.png",
        "use_blob_urls": True})
    ls.call("POST", f"/api/storages/localfiles/{storage['id']}/sync")
    server_tasks = ls.tasks(ls_pid)
    refs = sorted(next(iter(t["data"].values())) for t in server_tasks)
    assert len(refs) == 2 and all("/data/local-files/?d=" in r for r in refs), refs

    out = sync_service.pull(ls.url, ls_pid)
    assert (out.report.media_fetched, out.report.media_failed) == (2, 0)
    by_name = {f.name: f.read_bytes() for f in sources}
    for ref in refs:
        path = cache.lookup(rd_store, ref, [ls.url])
        assert path is not None, ref
        assert path.read_bytes() == by_name[Path(ref.split("?d=", 1)[1]).name]
    shown = _shown_offline(rd_store, ls_pid)
    assert set(shown.values()) == {"png"}, shown


def test_cloud_storage_uri_without_a_connected_storage(ls, sync_service, rd_store):
    ls_pid = ls.create_project("Cloud media, no storage", DIMENSIONS["regions"])
    ls.import_tasks(ls_pid, [{"data": {"image": "s3://team-bucket/screens/a.png"}},
                             {"data": {"image": "gs://team-bucket/screens/b.png"}}])
    server_tasks = ls.tasks(ls_pid)
    # with no storage connected the server leaves the URIs as they are (no resolver link in task data)
    assert sorted(t["data"]["image"] for t in server_tasks) == ["gs://team-bucket/screens/b.png",
                                                               "s3://team-bucket/screens/a.png"]
    out = sync_service.pull(ls.url, ls_pid)
    assert (out.report.media_fetched, out.report.media_failed) == (0, 2)
    msg = cache.failure_reason("s3://team-bucket/screens/a.png")
    assert msg and "no cloud storage connected" in msg and "404" in msg and "Cloud Storage" in msg
    # the review view says so too (same process)
    shown = _shown_offline(rd_store, ls_pid)
    assert all(v.startswith("error:") and "no cloud storage connected" in v for v in shown.values()), shown

    # the real resolver's shape, as the unit tests mimic it: 404 without a matching storage, 400 without
    # fileuri, and no file for a caller without a token
    task = next(t for t in server_tasks if t["data"]["image"].startswith("s3://"))
    c = LSClient(ls.url, ls.token, retries=0)
    b64 = base64.urlsafe_b64encode(b"s3://team-bucket/screens/a.png").decode()
    for path in (f"/tasks/{task['id']}/resolve/?fileuri={b64}", f"/tasks/{task['id']}/presign/?fileuri={b64}",
                 f"/projects/{ls_pid}/resolve/?fileuri={b64}"):
        with pytest.raises(NotFoundError):
            c.download(path, 10**6)
    with pytest.raises(RequestError) as e400:
        c.download(f"/tasks/{task['id']}/resolve/", 10**6)
    assert e400.value.status == 400
    anonymous = ls.api().__class__()
    anonymous.trust_env = False
    r = anonymous.get(f"{ls.url}/tasks/{task['id']}/resolve/?fileuri={b64}", timeout=60, allow_redirects=False)
    assert r.status_code in (401, 403)


def test_task_data_naming_other_origins_gets_no_token(ls, sync_service, rd_store, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    other = Loopback().start()
    try:
        other.route("/img/x.png", body=(DEMO / "media" / "screen_01.png").read_bytes(),
                    headers={"Content-Type": "image/png"})
        port = ls.url.rsplit(":", 1)[1]
        uploaded = ls.tasks(ls.projects["regions"])[0]["data"]["image"]
        ls_pid = ls.create_project("Untrusted media", DIMENSIONS["regions"])
        ls.import_tasks(ls_pid, [{"data": {"image": f"{other.url}/img/x.png"}},
                                 # the same server under another name is another origin: no token, so refused
                                 {"data": {"image": f"http://localhost:{port}{uploaded}"}}])
        out = sync_service.pull(ls.url, ls_pid)
        assert (out.report.media_fetched, out.report.media_failed) == (1, 1)
        assert other.auth_headers() == [None] and ls.token not in other.everything()
        assert cache.lookup(rd_store, f"{other.url}/img/x.png") is not None
        msg = cache.failure_reason(f"http://localhost:{port}{uploaded}")
        assert msg and ("401" in msg or "403" in msg)
        with rd_store.session() as s:
            assert all(ls.token not in (row.url or "") for row in s.scalars(select(MediaCache)))
    finally:
        other.stop()


def test_every_fetch_error_is_a_sync_error():
    """A media failure is reported, never raised out of a pull (SyncError is what fetch_media catches)."""
    assert issubclass(NotFoundError, SyncError) and issubclass(OfflineError, SyncError)
