"""Media resolution, checks, audio envelopes, HTML sanitising and time series (no Qt)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from app.models.config import parse_config
from app.services.media import (
    MediaError,
    MediaRef,
    display_size,
    load_timeseries,
    media_refs,
    prefetch_plan,
    read_wav_envelope,
    register_cache_lookup,
    resolve_media,
    sanitize_html,
    sniff,
    timeseries_spec,
)

CFG = parse_config("""<View><Text name="t" value="$text"/><Image name="img" value="$image"/>
<Audio name="voice" value="$audio"/><Choices name="c" toName="t"><Choice value="x"/></Choices>
<TimeSeries name="ts" value="$csv" valueType="url" timeColumn="time" sep=",">
  <Channel column="v" legend="Value" strokeColor="#ff0000"/></TimeSeries>
<TimeSeriesLabels name="ev" toName="ts"><Label value="Spike"/></TimeSeriesLabels></View>""")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def img(ref: str) -> MediaRef:
    return MediaRef("img", "Image", "image", ref)


def write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> None:
    t = np.arange(int(seconds * rate)) / rate
    s = (np.sin(2 * math.pi * 440 * t) * 16000).astype("<i2")
    if channels == 2:
        s = np.repeat(s, 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(s.tobytes())


def test_media_refs_follow_the_config() -> None:
    refs = media_refs({"text": "hi", "image": "media/a.png", "audio": "/x.wav"}, CFG)
    assert [(r.object_name, r.kind, r.is_file) for r in refs] == [("t", "text", False), ("img", "image", True),
                                                                 ("voice", "audio", True)]


def test_resolve_relative_absolute_file_url_and_local_files(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    f = tmp_path / "media" / "a b.png"
    f.write_bytes(PNG)
    root = str(tmp_path)
    for ref in ("media/a b.png", "media/a%20b.png", str(f), f.as_uri(), "/data/local-files/?d=media/a%20b.png"):
        r = resolve_media(img(ref), root)
        assert r.ok, (ref, r.error)
        assert Path(r.path).resolve() == f.resolve() and r.format == "png" and r.size == len(PNG)
    (tmp_path / "up.png").write_bytes(PNG)  # a Label Studio upload URL falls back to the file name
    assert resolve_media(img("/data/upload/7/up.png"), root).ok


def test_resolve_refuses_and_explains(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("just text, no image here")
    root = str(tmp_path)
    cases = {
        "missing.png": "not found",
        "empty.png": "empty",
        "notes.png": "not a supported image",
        "../outside.png": "outside the project's media folder",
        "https://example.com/x.png": "offline media cache",
    }
    for ref, words in cases.items():
        r = resolve_media(img(ref), root)
        assert not r.ok and words in (r.error or ""), (ref, r.error)
    assert "no media folder" in (resolve_media(img("a.png"), None).error or "")


def test_cache_lookup_hook_wins(tmp_path: Path) -> None:
    cached = tmp_path / "sha256-abc"
    cached.write_bytes(PNG)
    url = "https://bucket.example/img.png"
    unregister = register_cache_lookup(lambda u: str(cached) if u == url else None)
    try:
        r = resolve_media(img(url), None)
        assert r.ok and r.path == str(cached)
    finally:
        unregister()
    assert not resolve_media(img(url), None).ok
    assert resolve_media(img(url), None, cache_lookup=lambda u: str(cached)).ok


def test_sniff_formats(tmp_path: Path) -> None:
    samples = {"a": PNG, "b": b"\xff\xd8\xff\xe0" + b"\x00" * 20, "c": b"RIFF\x00\x00\x00\x00WAVEfmt ",
               "d": b"ID3\x03" + b"\x00" * 20, "e": b"time,v\n1,2\n", "f": b"\x00\x01\x02\x03"}
    out = {}
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
        out[name] = sniff(tmp_path / name)
    assert out == {"a": "png", "b": "jpeg", "c": "wav", "d": "mp3", "e": "csv", "f": None}


def test_prefetch_plan_takes_next_three_tasks_ok_media_once(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(PNG)
    datas = [{"image": f"{i}.png"} for i in range(5)] + [{"image": "0.png"}]
    datas[1] = {"image": "missing.png"}
    datas[2] = {"image": "0.png"}
    plan = prefetch_plan(datas, CFG, str(tmp_path))
    assert [Path(r.path).name for r in plan] == ["0.png"]
    plan = prefetch_plan([{"image": f"{i}.png"} for i in range(5)], CFG, str(tmp_path))
    assert [Path(r.path).name for r in plan] == ["0.png", "1.png", "2.png"]


def test_display_size_bounds_side_and_bytes() -> None:
    assert display_size(240, 160) == (240, 160)
    assert display_size(20000, 20000) == (4096, 4096)
    w, h = display_size(4000, 3000)
    assert (w, h) == (4000, 3000)
    w, h = display_size(16000, 1000, max_side=100000)
    assert 4 * w * h <= 256 * 1024**2


def test_wav_envelope_streams_long_files(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    write_wav(p, 60.0, rate=16000, channels=2)
    env = read_wav_envelope(p, bins=1000)
    assert env.duration == pytest.approx(60.0) and env.sample_rate == 16000 and env.channels == 2
    assert 900 <= env.mins.size <= 1000 and env.mins.size == env.maxs.size
    assert env.maxs.max() == pytest.approx(16000 / 32768, rel=1e-3) and env.mins.min() < 0


def test_bad_audio_raises_media_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(MediaError):
        read_wav_envelope(empty)
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(b"RIFF" + struct.pack("<I", 1000) + b"WAVEfmt ")
    with pytest.raises(MediaError):
        read_wav_envelope(trunc)
    r = resolve_media(MediaRef("voice", "Audio", "audio", "empty.wav"), str(tmp_path))
    assert not r.ok and "empty" in (r.error or "")


def test_sanitize_html_strips_scripts_and_remote_loads() -> None:
    raw = ('<p onclick="steal()">Hello <b>there</b><script>alert(1)</script>'
           '<img src="https://tracker.example/p.gif" alt="logo">'
           '<img src="data:image/png;base64,iVBORw0KGgo=">'
           '<a href="javascript:alert(1)">bad</a> <a href="https://ok.example">ok</a>'
           '<style>body{background:url(https://x.example/a.png)}</style>'
           '<iframe src="https://x.example"></iframe></p>')
    out = sanitize_html(raw)
    low = out.html.lower()
    assert "script" not in low and "alert" not in low and "onclick" not in low and "iframe" not in low
    assert "tracker.example" not in low and "x.example" not in low and "javascript" not in low
    assert "data:image/png" in out.html and 'href="https://ok.example"' in out.html
    assert "[remote logo not loaded]" in out.html and out.blocked_remote == 1 and out.changed
    assert "<b>there</b>" in out.html


def test_timeseries_from_csv_file_and_inline_columns(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("time,v,other\n0,1.5,9\n1,2.5,9\n2,x,9\n")
    spec = timeseries_spec(CFG, CFG.object("ts"))
    assert spec.time_column == "time" and spec.channels == (("v", "Value", "#ff0000"),)
    data = load_timeseries("s.csv", spec, str(tmp_path))
    assert list(data.time) == [0, 1, 2] and list(data.columns) == ["v"]
    assert data.columns["v"][:2].tolist() == [1.5, 2.5] and np.isnan(data.columns["v"][2])
    inline = load_timeseries({"time": [0, 1], "v": [3, 4]}, spec, None)
    assert inline.columns["v"].tolist() == [3, 4]
    with pytest.raises(MediaError):
        load_timeseries({"time": [0, 1]}, spec, None)
    with pytest.raises(MediaError):
        load_timeseries("missing.csv", spec, str(tmp_path))


# -- the offline media cache: what a team has on its Label Studio server -----------------------------------------
import base64  # noqa: E402
import json  # noqa: E402

from sqlalchemy import select, update  # noqa: E402

from app.models.schema import MediaCache  # noqa: E402
from app.sync import media as cache  # noqa: E402
from tests.unit.sync.test_token_origin import TOKEN, Loopback, Seen  # noqa: E402

PNG2 = b"\x89PNG\r\n\x1a\n" + b"\x02" * 40
PNG3 = b"\x89PNG\r\n\x1a\n" + b"\x03" * 40
IMG_CFG = ('<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="x"/>'
           '</Choices></View>')


def b64(uri: str) -> str:
    return base64.urlsafe_b64encode(uri.encode()).decode()  # what Label Studio writes (storages/base_models.py)


def test_plan_source_for_what_a_team_has() -> None:
    srv = "https://ls.example.org"
    up = cache.plan_source("/data/upload/3/a1b2-x.png", srv)
    assert up and up.fetch_url == srv + "/data/upload/3/a1b2-x.png" and up.aliases == (up.fetch_url,)
    lf = cache.plan_source("/data/local-files/?d=team/imgs/b.png", srv)
    assert lf and lf.fetch_url == srv + "/data/local-files/?d=team/imgs/b.png"
    other = cache.plan_source("https://cdn.example.net/x.png", srv)
    assert other and other.fetch_url == "https://cdn.example.net/x.png"
    s3 = cache.plan_source("s3://bucket/dir/c.png", srv, task_id=41, project_id=7)
    assert s3 and s3.storage_uri == "s3://bucket/dir/c.png"
    assert s3.fetch_url == f"{srv}/tasks/41/resolve/?fileuri={b64('s3://bucket/dir/c.png')}"
    assert s3.aliases == ("s3://bucket/dir/c.png", s3.fetch_url)
    gs = cache.plan_source("gs://b/d.png", srv, task_id=None, project_id=7)
    assert gs and gs.fetch_url == f"{srv}/projects/7/resolve/?fileuri={b64('gs://b/d.png')}"
    az = cache.plan_source("azure-blob://container/e.png", srv, task_id=2)
    assert az and az.storage_uri == "azure-blob://container/e.png"
    # a resolver link the server wrote into task data (storage connected): same file, found by its URI too
    link = f"/tasks/41/resolve/?fileuri={b64('s3://bucket/dir/c.png')}"
    rl = cache.plan_source(link, srv, task_id=41)
    assert rl and rl.fetch_url == srv + link and rl.storage_uri == "s3://bucket/dir/c.png"
    # ... on another host (a server with another HOST setting): asked of *this* server, for this task
    foreign = cache.plan_source(f"http://localhost:8080/tasks/99/presign/?fileuri={b64('s3://bucket/k.png')}",
                                srv, task_id=41)
    assert foreign and foreign.fetch_url == f"{srv}/tasks/41/resolve/?fileuri={b64('s3://bucket/k.png')}"
    for local in ("media/a.png", "file:///x/a.png", "data:image/png;base64,AAAA", "", "ftp://x/a.png"):
        assert cache.plan_source(local, srv, task_id=1) is None
    assert cache.storage_uri_of(srv + link) == "s3://bucket/dir/c.png"
    assert cache.storage_uri_of(f"{srv}/tasks/1/resolve/?fileuri=s3%3A%2F%2Fb%2Fk.png") == "s3://b/k.png"
    assert cache.storage_uri_of(srv + "/data/upload/1/a.png") is None


def test_cache_records_every_url_of_the_same_bytes(store) -> None:
    a = cache.store_bytes(store, "https://ls.example.org/data/upload/1/a.png", PNG, "image/png")
    b = cache.store_bytes(store, ["s3://bucket/a.png", "https://ls.example.org/tasks/5/resolve/?fileuri=x"], PNG,
                          "image/png")
    assert a == b
    assert cache.urls_for(store, a) == ["https://ls.example.org/data/upload/1/a.png", "s3://bucket/a.png",
                                        "https://ls.example.org/tasks/5/resolve/?fileuri=x"]
    with store.session() as s:
        assert s.scalar(select(MediaCache.url)) == "https://ls.example.org/data/upload/1/a.png"  # first name kept
    for ref in ("s3://bucket/a.png", "https://ls.example.org/tasks/5/resolve/?fileuri=x"):
        assert cache.lookup(store, ref) == cache.path_for(store, a)
    assert cache.lookup(store, "/data/upload/1/a.png", ["https://ls.example.org"]) == cache.path_for(store, a)
    assert cache.lookup(store, "/data/upload/1/a.png", ["https://other.example"]) is None
    assert len(list(cache.media_dir(store).rglob("*"))) == 2  # one folder, one file
    u = cache.usage(store)
    assert (u.files, u.bytes, u.urls) == (1, len(PNG), 3)


def test_an_older_cache_row_is_found_by_its_url(store) -> None:
    """Rows written before media_urls existed are brought in (and found) by their one url."""
    sha = cache.store_bytes(store, "https://ls.example.org/data/upload/9/old.png", PNG, "image/png")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE media_urls")  # a store from before the side table
    cache._ready.clear()
    assert cache.lookup(store, "https://ls.example.org/data/upload/9/old.png") == cache.path_for(store, sha)
    with store.session() as s:
        assert s.execute(select(cache.media_urls.c.url, cache.media_urls.c.sha256)).all() == [
            ("https://ls.example.org/data/upload/9/old.png", sha)]
    # a name whose bytes are gone (e.g. rows removed by another tool) never resolves
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM media_cache")
    assert cache.lookup(store, "https://ls.example.org/data/upload/9/old.png") is None


def test_lru_eviction_touches_on_read(store) -> None:
    shas = [cache.store_bytes(store, f"https://ls.example.org/data/upload/1/{i}.png", PNG + bytes([i]) * 1000,
                              "image/png") for i in range(3)]
    with store.transaction() as s:  # fetched in order 0, 1, 2 (0 is the oldest)
        for i, sha in enumerate(shas):
            s.execute(update(MediaCache).where(MediaCache.sha256 == sha)
                      .values(last_used_at=f"2026-01-0{i + 1}T00:00:00.000000Z"))
    # the reviewer looks at 0: it becomes the most recently used
    assert cache.lookup(store, "https://ls.example.org/data/upload/1/0.png") is not None
    size = len(PNG) + 1000
    assert cache.evict(store, 2 * size) == 1  # evict flushes the noted use first
    assert cache.lookup(store, "https://ls.example.org/data/upload/1/1.png") is None  # 1 was least recent
    assert not cache.path_for(store, shas[1]).exists()
    assert cache.lookup(store, "https://ls.example.org/data/upload/1/0.png") is not None
    with store.session() as s:
        assert s.scalar(select(cache.media_urls.c.url).where(cache.media_urls.c.sha256 == shas[1])) is None
    assert cache.evict(store, 10**9) == 0


def test_touch_is_written_off_the_calling_thread(store) -> None:
    sha = cache.store_bytes(store, "https://ls.example.org/data/upload/1/t.png", PNG, "image/png")
    with store.transaction() as s:
        s.execute(update(MediaCache).values(last_used_at="2026-01-01T00:00:00.000000Z"))
    assert cache.lookup(store, "https://ls.example.org/data/upload/1/t.png") is not None
    with store.session() as s:  # not written yet: the lookup (on the UI thread) did not wait for a write
        assert s.get(MediaCache, sha).last_used_at == "2026-01-01T00:00:00.000000Z"
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with store.session() as s:
            if s.get(MediaCache, sha).last_used_at > "2026-01-01T00:00:00.000000Z":
                break
        time.sleep(0.05)
    else:
        raise AssertionError("the use was never recorded")


def test_cap_is_a_setting(store) -> None:
    from app.services.media import media_cache_info, set_media_cache_cap
    from app.services.settings import load_settings

    assert cache.effective_cap_bytes(store) == 2048 * 1024**2
    for i in range(4):
        cache.store_bytes(store, f"https://ls.example.org/data/upload/1/{i}.png", PNG + bytes([i]) * (1024**2),
                          "image/png")
    assert media_cache_info(store).files == 4
    info, removed, changes = set_media_cache_cap(store, 16)
    assert (info.files, removed, info.cap_mb) == (4, 0, 16) and changes.settings
    assert load_settings(store.data_dir).media_cache_cap_mb == 16
    assert cache.effective_cap_bytes(store) == 16 * 1024**2 and cache.effective_cap_bytes(store, 5) == 5
    assert cache.evict(store, 2 * 1024**2 + 200) == 2
    with pytest.raises(ValueError, match="between 16"):
        set_media_cache_cap(store, 3)
    (store.data_dir / "settings.json").write_text(json.dumps({"media_cache_cap_mb": "lots"}))
    assert cache.effective_cap_bytes(store) == cache.DEFAULT_CAP_BYTES


def _server_project(store, tasks: dict[int, str]) -> tuple[int, list[int]]:
    from app.models.importer import insert_project
    from app.models.schema import Task as TaskRow
    from app.models.store import now_iso

    cfg = parse_config(IMG_CFG)
    with store.transaction() as s:
        p = insert_project(s, cfg, "team", media_root=None, server_id=7)
        rows = [TaskRow(project_id=p.id, server_id=sid, position=i, data={"image": ref}, meta={},
                        created_at=now_iso(), updated_at=now_iso()) for i, (sid, ref) in enumerate(tasks.items())]
        s.add_all(rows)
        s.flush()
        return p.id, [r.id for r in rows]


def test_fetch_uploads_local_files_and_storage_through_the_server(store, monkeypatch) -> None:
    """Against a loopback server shaped like Label Studio 1.23.2 (io_storages/proxy_api.py, data_import/api.py):
    uploads and local files need the token; the resolver answers 303 to a presigned link on another origin
    (fetched without the token), 200 when the storage proxies, 404 with an empty body when no storage connected
    to the project matches the URI, 424 with JSON when the storage failed to stream."""
    from app.services.media import resolve_media as resolve
    from app.sync.client import LSClient

    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    ls, s3 = Loopback().start(), Loopback().start()
    try:
        def authed(body: bytes, ctype: str = "image/png"):
            def route(seen: Seen):
                if seen.headers.get("authorization") != f"Token {TOKEN}":
                    return 401, {"Content-Type": "application/json"}, b'{"detail":"Authentication required"}'
                return 200, {"Content-Type": ctype}, body
            return route

        def resolver(seen: Seen):
            if seen.headers.get("authorization") != f"Token {TOKEN}":
                return 401, {}, b""
            q = seen.path.split("fileuri=", 1)
            if len(q) < 2:
                return 400, {}, b""
            uri = base64.urlsafe_b64decode(q[1].encode()).decode()
            if uri.startswith("s3://bucket/"):  # storage connected with presign=True
                return 303, {"Location": f"{s3.url}/bucket/{uri.rsplit('/', 1)[1]}?X-Amz-Signature=sig",
                             "Cache-Control": "no-store, max-age=900"}, b""
            if uri.startswith("azure-blob://proxied/"):  # presign=False: streamed through the server
                return 200, {"Content-Type": "image/png", "Accept-Ranges": "bytes"}, PNG3
            if uri.startswith("s3://broken/"):
                return 424, {"Content-Type": "application/json"}, json.dumps(
                    {"error": "Storage stream failed while proxying data", "detail": "NoSuchKey"}).encode()
            return 404, {}, b""  # no storage connected to the project matches the URI

        ls.routes["/data/upload/1/a.png"] = authed(PNG)
        ls.routes["/data/upload/1/login.png"] = authed(b"<html>Sign in</html>", "text/html; charset=utf-8")
        ls.routes["/data/local-files/?d=team/b.png"] = authed(PNG2)
        ls.routes["/tasks/"] = resolver
        s3.route("/bucket/c.png", body=PNG3 + b"c", headers={"Content-Type": "image/png"})
        s3.route("/cdn/x.png", body=PNG + b"x", headers={"Content-Type": "image/png"})
        refs = {11: "/data/upload/1/a.png", 12: f"{ls.url}/data/local-files/?d=team/b.png",
                13: "s3://bucket/c.png", 14: "s3://bucket/c.png",  # one file, two tasks: fetched once
                15: f"/tasks/15/resolve/?fileuri={b64('s3://bucket/c.png')}",  # a link the server wrote
                16: "gs://nostorage/d.png", 17: "azure-blob://proxied/e.png", 18: "s3://broken/f.png",
                19: f"{s3.url}/cdn/x.png", 20: "/data/upload/1/login.png", 21: "media/local-only.png"}
        pid, task_ids = _server_project(store, refs)
        client = LSClient(ls.url, TOKEN, retries=0, timeout=(2.0, 5.0))
        rep = cache.fetch_media(store, client, pid, task_ids)
        assert (rep.fetched, rep.failed) == (5, 3), rep.messages
        # the token went to the server only; the presigned and CDN origins got none
        assert s3.auth_headers() == [None, None] and TOKEN not in s3.everything()
        assert [s.path.split("?")[0] for s in s3.seen].count("/bucket/c.png") == 1
        for sid in (11, 12, 13, 14, 15, 17, 19):
            assert cache.lookup(store, refs[sid], [ls.url]) is not None, refs[sid]
        c_sha = cache.lookup(store, "s3://bucket/c.png").name
        assert set(cache.urls_for(store, c_sha)) >= {
            "s3://bucket/c.png", f"{ls.url}/tasks/13/resolve/?fileuri={b64('s3://bucket/c.png')}",
            f"{ls.url}/tasks/14/resolve/?fileuri={b64('s3://bucket/c.png')}", f"{ls.url}{refs[15]}"}
        gs_msg = cache.failure_reason("gs://nostorage/d.png")
        assert gs_msg and "no cloud storage connected" in gs_msg and "404" in gs_msg
        assert any("424" in m and "NoSuchKey" in m for m in rep.messages)
        assert any("web page" in m for m in rep.messages)
        # shown offline through the hook the GUI registers (SyncService.register_media_lookup)
        unregister = register_cache_lookup(lambda u: (p := cache.lookup(store, u, [ls.url])) and str(p))
        try:
            for sid in (11, 13, 15, 17):
                r = resolve(img(refs[sid]), None)
                assert r.ok and r.format == "png", (refs[sid], r.error)
            missing = resolve(img("gs://nostorage/d.png"), None)
            assert not missing.ok and "Cloud Storage" in (missing.error or "")
        finally:
            unregister()
        # a second pull downloads nothing again
        before = len(ls.seen)
        again = cache.fetch_media(store, client, pid, task_ids)
        assert again.fetched == 0 and again.failed == 3 and len(ls.seen) - before == 3  # only the failures retried
    finally:
        ls.stop()
        s3.stop()


def test_storage_uri_message_without_a_fetch() -> None:
    r = resolve_media(img("s3://bucket/never-fetched.png"), None)
    assert not r.ok and "Cloud Storage" in (r.error or "") and "s3://bucket/never-fetched.png" in (r.error or "")
    r = resolve_media(img("/data/upload/3/x.png"), None)
    assert not r.ok and "offline media cache" in (r.error or "")


def test_media_command_fetches_what_a_pull_left_and_sets_the_cap(store, data_dir, monkeypatch, capsys) -> None:
    """``reviewdesk media --fetch PROJECT`` retries every missing file of a pulled project and says why one is
    not available; ``--cap-mb`` saves the cap and evicts at once."""
    from app.cli import main
    from app.models.schema import Project, Server
    from app.models.store import now_iso

    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REVIEWDESK_TOKEN", TOKEN)
    import keyring

    monkeypatch.setattr(keyring, "get_password", lambda *_a: None)
    ls = Loopback().start()
    try:
        ls.route("/data/upload/1/a.png", body=PNG, headers={"Content-Type": "image/png"})
        pid, _ids = _server_project(store, {31: "/data/upload/1/a.png", 32: "s3://nostorage/z.png"})
        with store.transaction() as s:
            srv = Server(url=ls.url, created_at=now_iso())
            s.add(srv)
            s.flush()
            s.get(Project, pid).server_ref = srv.id
        store.close()
        code = main(["--data-dir", str(data_dir), "media", "--fetch", str(pid), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 1 and out["fetch"]["fetched"] == 1 and out["fetch"]["failed"] == 1
        assert "no cloud storage connected" in out["fetch"]["messages"][0] and out["files"] == 1
        assert ls.auth_headers()[0] == f"Token {TOKEN}"
        assert main(["--data-dir", str(data_dir), "media", "--cap-mb", "64"]) == 0
        assert "of 64 MiB cap" in capsys.readouterr().out
        assert main(["--data-dir", str(data_dir), "media", "--fetch", "999"]) == 1
    finally:
        ls.stop()
