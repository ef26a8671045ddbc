"""Issue 13.13: a dark theme that follows the system; every tab drawn in it (screenshots looked at).

The checks read the pixels of each tab: a light card or page left behind in the dark theme (a hard-coded
``white``) lifts the picture's mean luminance, and text drawn in the light theme's ink on a dark page
leaves the picture without light pixels. Both checks fail on the app as it was before the theme.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from app.services.settings import Settings, load_settings, save_settings
from app.views import theme
from tests.gui.helpers import shown_window


def _luminance(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.sizeInBytes()).reshape(h, img.bytesPerLine())
    px = buf[:, : w * 4].reshape(h, w, 4)[..., :3].astype(np.float64) / 255.0  # BGRA in memory
    b, g, r = px[..., 0], px[..., 1], px[..., 2]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture
def themed(request):
    app = QApplication.instance()
    wanted = request.param
    theme.apply(app, wanted)
    yield wanted
    theme.apply(app, "light")


def _window(qtbot, store, pid, size):
    return shown_window(qtbot, store, pid, size)


@pytest.mark.parametrize("themed", ["dark", "light"], indirect=True)
@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000)])
def test_every_tab_in_the_theme(qtbot, demo_store, shots_dir: Path, themed: str, size: tuple[int, int]) -> None:
    store, pid = demo_store
    w = _window(qtbot, store, pid, size)
    for name, tab in (("review", w.review), ("tasks", w.tabs.widget(1)), ("dashboard", w.dashboard)):
        w.tabs.setCurrentWidget(tab)
        if tab is w.dashboard:
            qtbot.waitUntil(lambda: w.dashboard.data is not None and not w.dashboard.busy(), timeout=30000)
        qtbot.wait(100)
        img = w.grab().toImage()
        img.save(str(shots_dir / f"13-{name}-{size[0]}x{size[1]}-{themed}.png"))
        lum = _luminance(img)
        if themed == "dark":
            # mostly dark, with light text on it (the heatmap's colour scale lifts the dashboard's mean; a
            # white page behind it measured 0.8)
            assert lum.mean() < (0.45 if name == "dashboard" else 0.33), (name, lum.mean())
            assert (lum > 0.75).mean() > 0.004, (name, (lum > 0.75).mean())
            # no large light block: a white card or page left behind shows as a band of bright rows
            bright_rows = (lum > 0.85).mean(axis=1)
            assert (bright_rows > 0.6).mean() < 0.05, name
            if tab is w.dashboard:  # the charts draw their own background (pyqtgraph ignores the palette)
                for chart in (w.dashboard.heatmap, w.dashboard.difficulty):
                    corner = _luminance(chart.grab().toImage())[:6, :6]
                    assert corner.mean() < 0.3, (chart.objectName(), corner.mean())
        else:
            assert lum.mean() > 0.7, (name, lum.mean())


def test_theme_follows_the_setting_and_is_remembered(qtbot, data_dir: Path) -> None:
    app = QApplication.instance()
    save_settings(data_dir, Settings().with_(theme="dark"))
    assert load_settings(data_dir).theme == "dark"
    try:
        assert theme.apply(app, load_settings(data_dir).theme) is True
        assert theme.is_dark() and theme.tone() is theme.DARK
        assert app.palette().window().color().lightness() < 80
        # "system" follows the platform; offscreen Qt reports no preference, which reads as light
        assert theme.apply(app, "system") is theme.system_is_dark()
        assert theme.apply(app, "nonsense") is theme.system_is_dark() and theme.mode() == "system"
    finally:
        theme.apply(app, "light")
    assert not theme.is_dark() and app.palette().window().color().lightness() > 200


def test_view_menu_switches_the_theme_at_once_and_remembers_it(qtbot, demo_store) -> None:
    store, pid = demo_store
    w = _window(qtbot, store, pid, (1024, 700))
    try:
        w.theme_actions["dark"].trigger()
        assert theme.is_dark() and w.theme_actions["dark"].isChecked()
        assert load_settings(store.data_dir).theme == "dark"
        qtbot.wait(50)
        # the open task's cards follow the palette at once (their style sheets name palette roles)
        lum = _luminance(w.review.grab().toImage())
        assert lum.mean() < 0.4, lum.mean()
        assert theme.DARK.muted in w.review.counters.text() or theme.DARK.muted in w.review.header.text() \
            or theme.DARK.fix in w.review.header.text()
        w.theme_actions["light"].trigger()
        assert not theme.is_dark() and load_settings(store.data_dir).theme == "light"
        qtbot.wait(50)
        assert _luminance(w.review.grab().toImage()).mean() > 0.6
    finally:
        theme.apply(QApplication.instance(), "light")
