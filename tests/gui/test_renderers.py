"""TaskView: every demo dimension rendered, fix keys pressed, emitted results checked, bad media survived.

Screenshots of each renderer go to the ``shots_dir`` folder (printed by the fixture).
"""

from __future__ import annotations

import json
import struct
import time
import wave
import zlib
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.models.config import parse_config, validate_result
from app.services.projects import AnnotationInfo, PredictionInfo, ProjectService, TaskDetail
from app.views.renderers import TaskView
from app.views.renderers.audio import AudioRenderer
from app.views.renderers.image import ImageRenderer
from app.views.renderers.text import HyperTextRenderer, TextRenderer

SHIFT, CTRL = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def demo(demo_store):
    store, pid = demo_store
    svc = ProjectService(store)
    cfg, root = svc.config(pid), svc.media_root(pid)
    rows = svc.task_page(pid, 0, 6)
    return svc, cfg, root, [svc.task_detail(r.id) for r in rows]


def make_view(qtbot, w: int = 1400, h: int = 1000) -> TaskView:
    v = TaskView()
    qtbot.addWidget(v)
    v.resize(w, h)
    v.show()
    qtbot.waitExposed(v)
    return v


def wait_media(qtbot, v: TaskView) -> None:
    if v.media_pending():
        with qtbot.waitSignal(v.mediaReady, timeout=20000):
            pass
    qtbot.wait(10)


def shoot(v, shots_dir: Path, name: str) -> None:
    from PySide6.QtWidgets import QApplication

    for _ in range(3):  # let pending layout requests settle before grabbing
        QApplication.processEvents()
    v.grab().save(str(shots_dir / f"renderer_{name}.png"))


def task(data: dict, annotations: list[list[dict]], predictions: list[list[dict]] = ()) -> TaskDetail:
    anns = tuple(AnnotationInfo(100 + i, None, i + 1, f"annotator{i + 1}@example.com", tuple(r), False, False, None,
                                None, None) for i, r in enumerate(annotations))
    preds = tuple(PredictionInfo(500 + i, None, f"model-v{i + 1}", 0.5, tuple(r)) for i, r in enumerate(predictions))
    return TaskDetail(1, 1, 77, 0, data, {}, None, anns, preds)


def save(qtbot, v: TaskView, key=Qt.Key.Key_Return, mod=Qt.KeyboardModifier.NoModifier) -> list[dict]:
    with qtbot.waitSignal(v.fixSaved, timeout=2000) as blocker:
        qtbot.keyClick(v.focusWidget() or v, key, mod)
    assert not v.in_fix_mode()
    return blocker.args[0]


# -- demo dimensions ---------------------------------------------------------------------------------


def test_demo_task_renders_every_dimension_with_comparison(qtbot, demo, shots_dir: Path) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root, show_predictions=True)
    wait_media(qtbot, v)
    text, image, audio = v.renderers["ticket"], v.renderers["screenshot"], v.renderers["voicemail"]
    assert isinstance(text, TextRenderer) and isinstance(image, ImageRenderer) and isinstance(audio, AudioRenderer)
    assert text.edit.toPlainText() == d.data["text"]
    assert len(text.edit.extraSelections()) >= 2
    assert image.pixmap_item is not None and image.image_size == (240, 160)
    n_boxes = sum(1 for a in d.annotations for i in a.result if i["from_name"] == "regions")
    n_boxes += sum(1 for p in d.predictions for i in (p.result or ()) if i["from_name"] == "regions")
    assert len(image.regions) == n_boxes
    assert audio.curves and audio.duration > 1
    assert len(v.chips) == len(d.annotations) + len(d.predictions)
    # comparison: every control has a card; the category card lists every evaluator
    assert set(v.cards) == {"entities", "category", "urgency", "regions", "segments"}
    rows = v.cards["category"].rows.text()
    assert all(lv.short in rows for lv in v.state.layers)
    shoot(v, shots_dir, "demo_compare")
    # hiding all but the focused layer: no comparison, no ≠ marks
    for chip in v.chips[1:]:
        chip.setChecked(False)
    assert v.state.comparison is None and "≠" not in v.cards["category"].rows.text()
    v.set_focus_annotation(d.annotations[1].id)
    assert v.focused_annotation_id() == d.annotations[1].id
    shoot(v, shots_dir, "demo_focus_second")


def test_disagreements_are_highlighted(qtbot, demo) -> None:
    _svc, cfg, root, details = demo
    d = next(t for t in details if len({json.dumps([i["value"] for i in a.result if i["from_name"] == "category"])
                                       for a in t.annotations}) > 1)
    v = make_view(qtbot)
    v.show_task(d, cfg, root)
    wait_media(qtbot, v)
    cat = v.state.comparison.controls["category"]
    assert not cat.agree and cat.differs
    assert "disagree" in v.cards["category"].title.text() and "≠" in v.cards["category"].rows.text()


def test_fix_choice_and_rating_by_keys(qtbot, demo, shots_dir: Path) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    ann = d.annotations[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root, focus_annotation_id=ann.id)
    wait_media(qtbot, v)
    v.start_fix(ann.id)
    assert v.in_fix_mode() and v.banner.isVisible()
    target = v.focusWidget() or v
    qtbot.keyClick(target, Qt.Key.Key_2)                 # category hotkey 2 -> Technical
    while v.active_control != "urgency":                  # Tab to the rating, then a number key
        qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_Tab)
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_4)
    assert v.cards["urgency"].property("active") == "true"
    shoot(v, shots_dir, "fix_choices_rating")
    result = save(qtbot, v, Qt.Key.Key_Return, CTRL)
    assert validate_result(cfg, result, strict=True) == []
    cat = [i for i in result if i["from_name"] == "category"]
    assert len(cat) == 1 and cat[0]["value"] == {"choices": ["Technical"]} and cat[0]["type"] == "choices"
    urg = [i for i in result if i["from_name"] == "urgency"]
    assert urg[0]["value"] == {"rating": 4}
    # everything else is the annotation as it was (ids included)
    untouched = [i for i in ann.result if i["from_name"] not in ("category", "urgency")]
    assert [i for i in result if i["from_name"] not in ("category", "urgency")] == untouched
    assert {i["id"] for i in result} >= {i["id"] for i in ann.result}


def test_fix_text_span_by_selection_then_label_hotkey(qtbot, demo, shots_dir: Path) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    ann = d.annotations[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root, focus_annotation_id=ann.id)
    v.start_fix(ann.id)
    text: TextRenderer = v.renderers["ticket"]
    word = "discount"
    start = d.data["text"].index(word)
    text.select_chars(start - 1, start + len(word) + 1)     # sloppy selection with spaces: trimmed
    text.edit.setFocus()
    qtbot.keyClick(text.edit, Qt.Key.Key_Q)                  # PRODUCT
    assert v.state.selected is not None                      # the new span is selected (a key relabels it)
    # with nothing selected, a label hotkey asks for a selection instead of guessing
    v.select_item(None)
    qtbot.keyClick(text.edit, Qt.Key.Key_W)
    assert "select text" in v.banner.text()
    shoot(v, shots_dir, "fix_text_span")
    result = save(qtbot, v)
    new = [i for i in result if i["from_name"] == "entities" and i["value"]["labels"] == ["PRODUCT"]
           and i["value"]["text"] == word]
    assert len(new) == 1
    assert new[0]["value"]["start"] == start and new[0]["value"]["end"] == start + len(word)
    assert new[0]["type"] == "labels" and new[0]["to_name"] == "ticket" and new[0]["origin"] == "manual"
    assert validate_result(cfg, result, strict=True) == []


def test_fix_text_span_relabel_and_delete(qtbot, demo) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    ann = d.annotations[0]
    span = next(i for i in ann.result if i["from_name"] == "entities")
    v = make_view(qtbot)
    v.show_task(d, cfg, root, focus_annotation_id=ann.id)
    v.start_fix(ann.id)
    text: TextRenderer = v.renderers["ticket"]
    text.edit.setFocus()
    cur = text.edit.textCursor()
    cur.setPosition(text.qpos(span["value"]["start"] + 1))
    text.edit.setTextCursor(cur)                             # clicking into a span selects it
    assert v.state.selected == span["id"]
    qtbot.keyClick(text.edit, Qt.Key.Key_W)                  # relabel AMOUNT
    assert v.state.doc.item(span["id"])["value"]["labels"] == ["AMOUNT"]
    qtbot.keyClick(text.edit, Qt.Key.Key_Delete)
    result = save(qtbot, v)
    assert span["id"] not in {i["id"] for i in result}


def test_fix_boxes_nudge_resize_add_delete(qtbot, demo, shots_dir: Path) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    ann = d.annotations[0]
    boxes = [i for i in ann.result if i["from_name"] == "regions"]
    b = boxes[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root, focus_annotation_id=ann.id)
    wait_media(qtbot, v)
    v.start_fix(ann.id)
    image: ImageRenderer = v.renderers["screenshot"]
    image.view.setFocus()
    v.select_item(b["id"])
    qtbot.keyClick(image.view, Qt.Key.Key_Right)             # +1 px
    qtbot.keyClick(image.view, Qt.Key.Key_Down, SHIFT)       # +10 px
    qtbot.keyClick(image.view, Qt.Key.Key_Right, CTRL)       # width +1 px
    qtbot.keyClick(image.view, Qt.Key.Key_X)                 # relabel the selected box: Button
    v.select_item(boxes[1]["id"])
    qtbot.keyClick(image.view, Qt.Key.Key_Delete)
    v.select_item(None)
    qtbot.keyClick(image.view, Qt.Key.Key_Z)                 # no selection: a new Error dialog box mid-view
    new_id = v.state.selected
    assert new_id is not None and image.regions[new_id].isSelected()
    shoot(v, shots_dir, "fix_boxes")
    result = save(qtbot, v)
    assert validate_result(cfg, result, strict=True) == []
    moved = next(i for i in result if i["id"] == b["id"])
    ow, oh = b["original_width"], b["original_height"]
    assert moved["value"]["x"] == pytest.approx(b["value"]["x"] + 100 / ow, abs=1e-4)
    assert moved["value"]["y"] == pytest.approx(b["value"]["y"] + 1000 / oh, abs=1e-4)
    assert moved["value"]["width"] == pytest.approx(b["value"]["width"] + 100 / ow, abs=1e-4)
    assert moved["value"]["height"] == pytest.approx(b["value"]["height"], abs=1e-4)
    assert moved["value"]["rectanglelabels"] == ["Button"] and moved["original_width"] == 240
    assert boxes[1]["id"] not in {i["id"] for i in result}
    new = next(i for i in result if i["id"] == new_id)
    assert new["type"] == "rectanglelabels" and new["value"]["rectanglelabels"] == ["Error dialog"]
    assert new["original_width"] == 240 and new["original_height"] == 160
    assert 0 <= new["value"]["x"] <= 100 and new["value"]["width"] > 0 and new["value"]["rotation"] == 0


def test_fix_box_by_mouse_drag_on_empty_image(qtbot, demo) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root)
    wait_media(qtbot, v)
    v.start_fix(None)                                        # from empty
    image: ImageRenderer = v.renderers["screenshot"]
    view = image.view
    p0 = view.mapFromScene(20, 20)
    p1 = view.mapFromScene(80, 60)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=p0)
    qtbot.mouseMove(view.viewport(), p1)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=p1)
    result = v.current_fix_result()
    assert len(result) == 1 and result[0]["type"] == "rectanglelabels"
    val = result[0]["value"]
    assert val["x"] == pytest.approx(20 / 240 * 100, abs=1.5) and val["width"] == pytest.approx(60 / 240 * 100, abs=2)


def test_fix_audio_segments(qtbot, demo, shots_dir: Path) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    ann = d.annotations[0]
    seg = next(i for i in ann.result if i["from_name"] == "segments")
    v = make_view(qtbot)
    v.show_task(d, cfg, root, focus_annotation_id=ann.id)
    wait_media(qtbot, v)
    v.start_fix(ann.id)
    audio: AudioRenderer = v.renderers["voicemail"]
    audio.plot.setFocus()
    v.select_item(seg["id"])
    qtbot.keyClick(audio.plot, Qt.Key.Key_Right)            # both edges +0.1 s
    qtbot.keyClick(audio.plot, Qt.Key.Key_Right, CTRL)      # end +0.1 s
    # dragging an edge: the region item reports the new range
    audio.regions[seg["id"]].setRegion((seg["value"]["start"] + 0.05, seg["value"]["end"] + 0.3))
    audio.regions[seg["id"]].sigRegionChangeFinished.emit(audio.regions[seg["id"]])
    v.select_item(None)
    qtbot.keyClick(audio.plot, Qt.Key.Key_Y)                # new Noise segment at the view centre
    shoot(v, shots_dir, "fix_audio")
    result = save(qtbot, v)
    assert validate_result(cfg, result, strict=True) == []
    moved = next(i for i in result if i["id"] == seg["id"])
    assert moved["value"]["start"] == pytest.approx(seg["value"]["start"] + 0.05, abs=1e-6)
    assert moved["value"]["end"] == pytest.approx(seg["value"]["end"] + 0.3, abs=1e-6)
    assert moved["value"]["channel"] == 0 and moved["type"] == "labels"
    noise = [i for i in result if i["from_name"] == "segments" and i["id"] not in {x["id"] for x in ann.result}]
    assert len(noise) == 1 and noise[0]["value"]["labels"] == ["Noise"]
    assert 0 <= noise[0]["value"]["start"] < noise[0]["value"]["end"] <= audio.duration


def test_escape_cancels_and_nothing_is_emitted(qtbot, demo) -> None:
    _svc, cfg, root, details = demo
    d = details[0]
    v = make_view(qtbot)
    v.show_task(d, cfg, root)
    v.start_fix(d.annotations[0].id)
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_3)
    assert v.current_fix_result() != list(d.annotations[0].result)
    saved = []
    v.fixSaved.connect(saved.append)
    with qtbot.waitSignal(v.fixCancelled, timeout=1000):
        qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_Escape)
    assert not v.in_fix_mode() and not saved and not v.banner.isVisible()
    # outside fix mode keys are left alone
    qtbot.keyClick(v, Qt.Key.Key_1)
    assert v.current_fix_result() == []


def test_prefetch_makes_the_next_task_display_from_cache(qtbot, demo) -> None:
    _svc, cfg, root, details = demo
    v = make_view(qtbot)
    v.show_task(details[0], cfg, root)
    wait_media(qtbot, v)
    v.prefetch(details[1:4], root)
    assert v.media.wait_idle(20000)
    qtbot.wait(20)
    v.show_task(details[1], cfg, root)
    assert not v.media_pending()
    assert v.renderers["screenshot"].pixmap_item is not None and v.renderers["voicemail"].curves


# -- bad media ---------------------------------------------------------------------------------------

MEDIA_CFG = parse_config("""<View>
  <Image name="img" value="$image"/>
  <RectangleLabels name="boxes" toName="img"><Label value="Thing" hotkey="t"/></RectangleLabels>
  <Audio name="voice" value="$audio"/>
  <Labels name="seg" toName="voice"><Label value="Speech" hotkey="s"/></Labels>
  <Choices name="ok" toName="img"><Choice value="yes" hotkey="1"/><Choice value="no" hotkey="2"/></Choices>
</View>""")


def big_png(path: Path, w: int, h: int) -> None:
    """A valid RGB PNG of w x h streamed row by row (tiny on disk; 1.6 GB if fully decoded)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    row = b"\x00" + bytes([90, 140, 200]) * w
    co = zlib.compressobj(1)
    idat = b"".join(co.compress(row) for _ in range(h)) + co.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def box(x: float = 10, w: float = 30) -> dict:
    return {"id": f"b{x}", "from_name": "boxes", "to_name": "img", "type": "rectanglelabels", "original_width": 400,
            "original_height": 300, "value": {"x": x, "y": 20, "width": w, "height": 30, "rotation": 0,
                                              "rectanglelabels": ["Thing"]}}


def test_truncated_png_and_empty_wav_show_messages_and_fix_still_works(qtbot, tmp_path: Path,
                                                                          shots_dir: Path) -> None:
    good = QImage(400, 300, QImage.Format.Format_RGB32)
    good.fill(Qt.GlobalColor.darkCyan)
    good.save(str(tmp_path / "good.png"))
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.wav").write_bytes(b"")
    d = task({"image": "trunc.png", "audio": "empty.wav"}, [[box()]])
    v = make_view(qtbot, 1200, 800)
    v.show_task(d, MEDIA_CFG, str(tmp_path))
    wait_media(qtbot, v)
    image, audio = v.renderers["img"], v.renderers["voice"]
    assert image.notice.isVisible() and "truncated or corrupt" in image.notice.text()
    assert audio.notice.isVisible() and "empty" in audio.notice.text()
    assert not audio.play_button.isEnabled()
    assert len(image.regions) == 1 and image.image_size == (400, 300)    # boxes still drawn on a canvas
    shoot(v, shots_dir, "bad_media")
    v.start_fix(100)
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_1)
    result = save(qtbot, v)
    assert any(i["from_name"] == "ok" and i["value"] == {"choices": ["yes"]} for i in result)


def test_missing_and_remote_media_explain_themselves(qtbot, tmp_path: Path) -> None:
    d = task({"image": "nope.png", "audio": "https://example.com/v.mp3"}, [[]])
    v = make_view(qtbot, 1000, 700)
    v.show_task(d, MEDIA_CFG, str(tmp_path))
    assert "file not found" in v.renderers["img"].notice.text()
    assert "offline media cache" in v.renderers["voice"].notice.text()


def test_huge_png_neither_freezes_nor_exhausts_memory(qtbot, tmp_path: Path, shots_dir: Path) -> None:
    import resource

    big_png(tmp_path / "huge.png", 20000, 20000)
    d = task({"image": "huge.png"}, [[box(), box(50, 20)]])
    v = make_view(qtbot, 1000, 700)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    v.show_task(d, MEDIA_CFG, str(tmp_path))
    shown = time.perf_counter() - t0
    assert shown < 1.0                     # decoding is off the UI thread
    wait_media(qtbot, v)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    image = v.renderers["img"]
    assert image.image_size == (20000, 20000)
    assert "too large" in image.notice.text() and image.notice.isVisible()
    assert len(image.regions) == 2
    assert grown_mb < 300, f"peak RSS grew by {grown_mb:.0f} MB"
    shoot(v, shots_dir, "huge_png")


def test_large_jpeg_is_decoded_downscaled(qtbot, tmp_path: Path) -> None:
    img = QImage(6000, 1500, QImage.Format.Format_RGB32)
    img.fill(Qt.GlobalColor.darkGreen)
    img.save(str(tmp_path / "wide.jpg"), "JPG", 60)
    d = task({"image": "wide.jpg"}, [[box()]])
    v = make_view(qtbot, 1000, 700)
    v.show_task(d, MEDIA_CFG, str(tmp_path))
    wait_media(qtbot, v)
    image = v.renderers["img"]
    assert image.image_size == (6000, 1500) and image.pixmap_item is not None
    assert image.pixmap_item.pixmap().width() == 4096
    assert image.pixmap_item.sceneBoundingRect().width() == pytest.approx(6000, rel=1e-3)


def test_playback_falls_back_to_silent_waveform(qtbot, tmp_path: Path, monkeypatch) -> None:
    from app.views.renderers import audio as audio_mod

    rate = 8000
    t = np.arange(rate * 2) / rate
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 9000).astype("<i2").tobytes())
    monkeypatch.setattr(audio_mod, "load_multimedia", lambda: None)
    d = task({"audio": "a.wav"}, [[]])
    v = make_view(qtbot, 1000, 700)
    v.show_task(d, MEDIA_CFG, str(tmp_path))
    wait_media(qtbot, v)
    a = v.renderers["voice"]
    assert a.curves and a.duration == pytest.approx(2.0)
    a.play_button.click()
    assert a.playback_note.isVisible() and "libpulse0" in a.playback_note.text()
    assert a.curves                         # the waveform stays


# -- other objects and controls ----------------------------------------------------------------------

RICH_CFG = parse_config("""<View>
  <HyperText name="page" value="$html"/>
  <Paragraphs name="chat" value="$dialogue" nameKey="author" textKey="text"/>
  <ParagraphLabels name="plabels" toName="chat"><Label value="Complaint"/></ParagraphLabels>
  <TimeSeries name="ts" value="$series" valueType="json" timeColumn="time">
    <Channel column="temp" legend="Temperature" strokeColor="#d62728"/>
  </TimeSeries>
  <TimeSeriesLabels name="events" toName="ts"><Label value="Spike" hotkey="k"/></TimeSeriesLabels>
  <Text name="a" value="$a"/><Text name="b" value="$b"/>
  <Pairwise name="better" toName="a,b"/>
  <Choices name="tags" toName="page" choice="multiple"><Choice value="spam"/><Choice value="rude"/><Choice value="ok"/></Choices>
  <TextArea name="note" toName="page"/>
  <Number name="count" toName="page" min="0" max="10"/>
  <BrushLabels name="mask" toName="page"><Label value="Blob"/></BrushLabels>
  <Video name="clip" value="$video"/>
  <MyWidget name="custom" value="$x"/>
</View>""")


def rich_task() -> TaskDetail:
    html = ('<h3>Order <i>#4411</i></h3><p onclick="x()">Customer wrote:<script>document.write("pwned")</script>'
            ' <img src="https://tracker.example/pixel.gif" alt="tracking pixel"> please refund.</p>'
            '<table><tr><th>item</th><th>qty</th></tr><tr><td>Widget</td><td>2</td></tr></table>')
    series = {"time": list(range(50)), "temp": [20 + (5 if 20 <= i < 25 else 0) + (i % 3) for i in range(50)]}
    ann1 = [
        {"id": "p1", "from_name": "plabels", "to_name": "chat", "type": "paragraphlabels",
         "value": {"start": "1", "end": "1", "startOffset": 0, "endOffset": 14, "text": "It broke again",
                   "paragraphlabels": ["Complaint"]}},
        {"id": "e1", "from_name": "events", "to_name": "ts", "type": "timeserieslabels",
         "value": {"start": 19, "end": 26, "instant": False, "timeserieslabels": ["Spike"]}},
        {"id": "w1", "from_name": "better", "to_name": "a", "type": "pairwise", "value": {"selected": "left"}},
        {"id": "t1", "from_name": "tags", "to_name": "page", "type": "choices", "value": {"choices": ["spam", "rude"]}},
        {"id": "n1", "from_name": "note", "to_name": "page", "type": "textarea", "value": {"text": ["refund asked"]}},
        {"id": "c1", "from_name": "count", "to_name": "page", "type": "number", "value": {"number": 2}},
        {"id": "m1", "from_name": "mask", "to_name": "page", "type": "brushlabels",
         "value": {"format": "rle", "rle": [1, 2, 3], "brushlabels": ["Blob"]}},
    ]
    ann2 = [dict(i) for i in ann1[1:4]]
    ann2[1] = {**ann2[1], "value": {"selected": "right"}}
    return task({"html": html, "dialogue": [{"author": "Agent", "text": "How can I help?"},
                                            {"author": "Customer", "text": "It broke again, second time."}],
                 "series": series, "a": "Answer A: reboot.", "b": "Answer B: replace the unit.",
                 "video": "clip.mp4", "x": 1}, [ann1, ann2])


def test_hypertext_paragraphs_timeseries_and_placeholders(qtbot, shots_dir: Path) -> None:
    d = rich_task()
    v = make_view(qtbot, 1400, 1300)
    v.show_task(d, RICH_CFG, None)
    qtbot.wait(20)
    ht: HyperTextRenderer = v.renderers["page"]
    assert "script" not in ht.sanitized.lower() and "pwned" not in ht.sanitized
    assert "tracker.example" not in ht.view.toHtml() and "onclick" not in ht.sanitized
    assert ht.notice.isVisible() and "not loaded" in ht.notice.text()
    assert not any(u.startswith("http") for u in ht.view.blocked_loads)
    chat = v.renderers["chat"].view.toPlainText()
    assert "Customer" in chat and "It broke again" in chat
    ts = v.renderers["ts"]
    assert len(ts.curves) == 1 and ts.duration == 49 and len(ts.regions) == 0 and ts.region_items
    assert "not displayed" in v.renderers["clip"].findChild(type(ht.notice), "notice").text()
    assert "MyWidget" in v.renderers["custom"].title.text().replace("&lt;", "<")
    mask = v.cards["mask"]
    assert "brushlabels" in mask.raw.toPlainText()
    assert not v.state.comparison.controls["better"].agree
    shoot(v, shots_dir, "rich_objects")


def test_fix_textarea_number_pairwise_multichoice_timeseries(qtbot, shots_dir: Path) -> None:
    d = rich_task()
    v = make_view(qtbot, 1400, 1300)
    v.show_task(d, RICH_CFG, None)
    v.start_fix(100)

    def tab_to(name: str) -> None:
        for _ in range(20):
            if v.active_control == name:
                return
            qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_Tab)
        raise AssertionError(name)

    tab_to("better")
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_Right)
    tab_to("tags")
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_1)          # no hotkeys: nth option toggles (spam off)
    qtbot.keyClick(v.focusWidget() or v, Qt.Key.Key_3)          # ok on
    tab_to("note")
    area = v.cards["note"].edit
    assert v.focusWidget() is area
    qtbot.keyClicks(area, " twice")
    v.cards["count"].spin.setValue(7)
    ts = v.renderers["ts"]
    v.select_item(None)
    area.clearFocus()
    ts.plot.setFocus()
    qtbot.keyClick(ts.plot, Qt.Key.Key_K)                       # a new Spike range
    shoot(v, shots_dir, "fix_rich")
    result = save(qtbot, v, Qt.Key.Key_Return, CTRL)
    by = {i["from_name"]: i for i in result}
    assert by["better"]["value"] == {"selected": "right"}
    assert by["tags"]["value"] == {"choices": ["rude", "ok"]}
    assert by["note"]["value"] == {"text": ["refund asked twice"]}
    assert by["count"]["value"] == {"number": 7}
    assert by["mask"] == d.annotations[0].result[-1]            # untouched unknown items survive
    spikes = [i for i in result if i["from_name"] == "events"]
    assert len(spikes) == 2 and spikes[-1]["type"] == "timeserieslabels"
    assert spikes[-1]["value"]["timeserieslabels"] == ["Spike"] and spikes[-1]["value"]["instant"] is False
    problems = validate_result(RICH_CFG, [i for i in result if i["from_name"] != "mask"], strict=True)
    assert problems == []


# -- long sessions -----------------------------------------------------------------------------------


def test_cycling_many_demo_tasks_does_not_crash(qtbot, demo_store) -> None:
    """What the review panel does on every decision, for a few hundred tasks (this used to segfault).

    Image regions sized their handle margin from the live zoom in ``boundingRect`` without
    ``prepareGeometryChange``: when the page reflowed the fitted zoom changed, ``removeItem`` then
    looked the region up in the scene's BSP index under the new rect, left it in some leaves, Python
    freed it, and the next paint walked the dangling pointer (``QGraphicsItem::topLevelItem``).
    """
    import gc

    from PySide6.QtWidgets import QApplication

    from app.views.renderers.image import RegionItem

    store, pid = demo_store
    svc = ProjectService(store)
    cfg, root = svc.config(pid), svc.media_root(pid)
    details = [svc.task_detail(r.id) for r in svc.task_page(pid, 0, 10_000)]
    assert len(details) >= 100
    app = QApplication.instance()
    w, h = 900, 600  # narrow like the review panel's tab: the image's fitted zoom follows the view width
    v = make_view(qtbot, w, h)
    zooms: set[float] = set()
    for i in range(60):  # ~800 decisions
        d = details[i % len(details)]
        ids = [a.id for a in d.annotations]
        v.show_task(d, cfg, root, focus_annotation_id=ids[0] if ids else None)
        v.prefetch([details[(i + k) % len(details)] for k in (1, 2, 3)], root)
        app.processEvents()
        img = v.renderers["screenshot"]
        # between decisions the page reflows (header, history, scroll bars): the fitted zoom changes
        v.resize(w - 40 * (i % 3), h)
        app.processEvents()
        zooms.add(round(img.view.transform().m11(), 4))
        for aid in ids[1:] + ids[:1]:  # the panel refocuses after each decision
            v.set_focus_annotation(aid)
            app.processEvents()
        assert not v.grab().isNull()
        if i % 50 == 0:
            gc.collect()
    assert len(zooms) > 1 and isinstance(img, ImageRenderer)
    # every region in the scene is one the renderer tracks, and its margin follows the zoom
    regions = [it for it in img.scene.items() if isinstance(it, RegionItem)]
    assert regions and set(regions) <= set(img.region_items)
    assert all(r.margin == img.handle_margin() for r in regions)
    assert v.media.wait_idle(20000)
    app.processEvents()


def test_many_evaluators_keep_the_view_narrow_and_chips_are_reused(qtbot, shots_dir: Path) -> None:
    cfg = parse_config('<View><Text name="text" value="$text"/><Choices name="c" toName="text">'
                       '<Choice value="a"/><Choice value="b"/></Choices></View>')

    def task(tid: int, n: int) -> TaskDetail:
        anns = tuple(AnnotationInfo(tid * 100 + i, None, i, f"annotator{i:02d}@example.com",
                                    ({"from_name": "c", "to_name": "text", "type": "choices",
                                      "value": {"choices": ["a" if i % 3 else "b"]}},),
                                    False, False, 3.0, None, None) for i in range(n))
        return TaskDetail(tid, 1, tid, tid, {"text": f"task {tid}"}, {}, None, anns, ())

    v = make_view(qtbot, 900, 700)
    v.show_task(task(1, 14), cfg, None)
    qtbot.wait(20)
    assert len(v.chips) == 14
    # fourteen chips side by side used to force the window wider than most screens
    assert v.minimumSizeHint().width() < 900
    # the card lists at most 12 evaluators: the focused one and every one that differs come first
    rows = v.cards["c"].rows.text()
    assert "and 2 more evaluators" in rows
    differing = [i for i in range(14) if i % 3]  # answered "a" where the focused annotator00 said "b"
    assert all(f"nnotator{i:02d}" in rows for i in [0, *differing])
    assert "nnotator12" not in rows and "nnotator09" not in rows  # agreeing ones beyond the cap
    first = list(v.chips)
    v.set_focus_annotation(113)  # the last evaluator: its chip is scrolled into view
    qtbot.wait(20)
    last = v.chips[-1]
    assert last.key == "a:113" and "13" in last.text()
    assert v.chips_area.horizontalScrollBar().value() > 0
    shown = last.geometry().translated(-v.chips_area.horizontalScrollBar().value(), 0)
    assert v.chips_area.viewport().rect().intersects(shown)
    v.show_task(task(2, 3), cfg, None)  # fewer evaluators: chips reused, extra ones removed
    qtbot.wait(20)
    assert len(v.chips) == 3 and v.chips == first[:3]
    assert [c.key for c in v.chips] == ["a:200", "a:201", "a:202"]
    shoot(v, shots_dir, "few_after_many")
