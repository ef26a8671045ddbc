"""Time to display a task in ``TaskView``, cold and prefetched, beside plain decoding baselines.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_render.py [--repeat 5]

Two tasks are generated in a temporary folder:
  * image: a 4000x3000 PNG (photo-like noise, ~35 MB decoded) with 50 rectangles, two annotations;
  * audio: a 10-minute 16 kHz mono WAV (19 MB) with 40 segments, two annotations.
For each, the median over ``--repeat`` runs of
  * baseline: ``QImage(path)`` full decode / ``wave`` + numpy full read of the samples (UI thread);
  * cold:     ``show_task`` with an empty media cache until the media are decoded and painted
              (decoding runs on the worker pool; the OS file cache is warm after the first run);
  * prefetched: ``prefetch`` beforehand, then ``show_task`` until painted (target < 100 ms).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._util import table  # noqa: E402

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <RectangleLabels name="boxes" toName="img"><Label value="A" background="#d62728"/><Label value="B"/></RectangleLabels>
  <Audio name="voice" value="$audio"/>
  <Labels name="seg" toName="voice"><Label value="Speech"/><Label value="Noise"/></Labels>
  <Choices name="ok" toName="img"><Choice value="yes"/><Choice value="no"/></Choices>
</View>"""


def make_media(folder: Path) -> tuple[Path, Path]:
    from PySide6.QtGui import QImage

    rng = np.random.default_rng(7)
    h, w = 3000, 4000
    y, x = np.mgrid[0:h, 0:w]
    base = ((x / w * 200) + (y / h * 55)).astype(np.uint8)
    noise = rng.integers(0, 40, (h, w), dtype=np.uint8)
    rgb = np.dstack([base, (base // 2 + noise), (255 - base)]).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
    img = QImage(rgba.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888)
    png = folder / "big.png"
    img.save(str(png))
    rate = 16000
    n = rate * 600
    t = np.arange(n, dtype=np.float32) / rate
    s = (np.sin(2 * math.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * math.pi * 0.2 * t)) * 12000
         + rng.normal(0, 800, n)).astype("<i2")
    wav = folder / "long.wav"
    with wave.open(str(wav), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(s.tobytes())
    return png, wav


def details(folder: Path):
    from app.services.projects import AnnotationInfo, TaskDetail

    rng = np.random.default_rng(3)

    def boxes(jitter: float) -> list[dict]:
        out = []
        for i in range(50):
            x, y = 2 + (i % 10) * 9.5, 3 + (i // 10) * 19
            out.append({"id": f"b{i}-{jitter}", "from_name": "boxes", "to_name": "img", "type": "rectanglelabels",
                        "original_width": 4000, "original_height": 3000,
                        "value": {"x": x + rng.normal(0, jitter), "y": y, "width": 7, "height": 14,
                                  "rotation": 0, "rectanglelabels": ["A" if i % 3 else "B"]}})
        return out

    def segments(jitter: float) -> list[dict]:
        return [{"id": f"s{i}-{jitter}", "from_name": "seg", "to_name": "voice", "type": "labels",
                 "value": {"start": i * 15 + rng.normal(0, jitter), "end": i * 15 + 8, "channel": 0,
                           "labels": ["Speech" if i % 4 else "Noise"]}} for i in range(40)]

    def ann(i: int, result: list[dict]) -> AnnotationInfo:
        return AnnotationInfo(i, None, i, f"user{i}@example.com", tuple(result), False, False, None, None, None)

    img_task = TaskDetail(1, 1, 1, 0, {"image": "big.png"}, {}, None, (ann(1, boxes(0)), ann(2, boxes(0.5))), ())
    aud_task = TaskDetail(2, 1, 2, 1, {"audio": "long.wav"}, {}, None, (ann(3, segments(0)), ann(4, segments(0.3))),
                          ())
    return img_task, aud_task


def pad_none_refcount() -> None:
    """Work around a PySide6 6.12.0 bug on CPython < 3.12 for the length of this run.

    Every call of a void Qt method (``QWidget.update``, ``QGraphicsItem.prepareGeometryChange``...)
    drops one reference to ``None`` (and bool returns to ``True``/``False``; measured: -1000 per 1000 calls), so a long run aborts with
    "none_dealloc". ``None`` is immortal from 3.12 on; until the dependency is fixed, pad its count.
    """
    if sys.version_info < (3, 12):
        import ctypes

        for singleton in (None, True, False):
            ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 40


def main() -> int:
    pad_none_refcount()
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.models.config import parse_config
    from app.views.renderers import MediaCache, TaskView

    cfg = parse_config(CONFIG)
    folder = Path(tempfile.mkdtemp(prefix="bench-render-"))
    png, wav = make_media(folder)
    img_task, aud_task = details(folder)
    root = str(folder)

    def baseline_image() -> float:
        t = time.perf_counter()
        im = QImage(str(png))
        assert not im.isNull()
        return time.perf_counter() - t

    def baseline_audio() -> float:
        t = time.perf_counter()
        with wave.open(str(wav), "rb") as wf:
            a = np.frombuffer(wf.readframes(wf.getnframes()), "<i2").astype(np.float32)
        assert a.size
        return time.perf_counter() - t

    view = TaskView()
    view.resize(1400, 1000)
    view.show()
    app.processEvents()

    def display(task, *, prefetched: bool) -> float:
        view.media = MediaCache(parent=view)
        view.media.ready.connect(view._media_ready)
        if prefetched:
            view.config = cfg
            view.prefetch([task], root)
            view.media.wait_idle()
            app.processEvents()
        t = time.perf_counter()
        view.show_task(task, cfg, root)
        while view.media_pending():
            app.processEvents()
            time.sleep(0.001)
        app.processEvents()
        view.repaint()
        return time.perf_counter() - t

    def med(fn, *a, **kw) -> float:
        fn(*a, **kw)  # warm-up (imports, OS file cache)
        return statistics.median(fn(*a, **kw) for _ in range(args.repeat)) * 1000

    rows = [("task", "baseline (full decode, UI thread)", "cold show_task", "prefetched show_task")]
    rows.append(("4000x3000 PNG + 50 boxes x2", f"{med(baseline_image):.0f} ms  QImage(path)",
                 f"{med(display, img_task, prefetched=False):.0f} ms", f"{med(display, img_task, prefetched=True):.0f} ms"))
    rows.append(("10-min 16 kHz WAV + 40 segs x2", f"{med(baseline_audio):.0f} ms  wave+numpy read",
                 f"{med(display, aud_task, prefetched=False):.0f} ms", f"{med(display, aud_task, prefetched=True):.0f} ms"))
    print(f"TaskView display time, median of {args.repeat} (2-core machine, offscreen):")
    print(table(rows))
    print("target: prefetched < 100 ms")
    view.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
