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
