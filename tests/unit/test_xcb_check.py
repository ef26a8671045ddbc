"""The GUI names the missing xcb packages instead of letting Qt abort (issue 12, first run)."""

from __future__ import annotations

import ctypes
import sys

import pytest

from app import main as entry


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is the Linux platform plugin")
def test_missing_xcb_libraries_are_named(monkeypatch):
    real = ctypes.CDLL

    def fake_cdll(name, *a, **kw):
        if name in ("libxcb-icccm.so.4", "libxcb-xkb.so.1"):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *a, **kw) if name not in entry.XCB_LIBS.values() else object()

    monkeypatch.setattr(ctypes, "CDLL", fake_cdll)
    assert entry.missing_xcb_packages({"DISPLAY": ":99"}) == ["libxcb-icccm4", "libxcb-xkb1"]
    # other platforms (offscreen, wayland, no display) are not checked
    assert entry.missing_xcb_packages({"DISPLAY": ":99", "QT_QPA_PLATFORM": "offscreen"}) == []
    assert entry.missing_xcb_packages({"WAYLAND_DISPLAY": "wayland-0"}) == []
    assert entry.missing_xcb_packages({}) == []
    assert entry.missing_xcb_packages({"QT_QPA_PLATFORM": "xcb"}) == ["libxcb-icccm4", "libxcb-xkb1"]


def test_run_gui_prints_one_line_and_exits(monkeypatch, capsys):
    monkeypatch.setattr(entry, "missing_xcb_packages", lambda env=None: ["libxcb-icccm4"])
    assert entry.run_gui(data_dir=None, demo=False) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "libxcb-icccm4" in err[0] and "apt-get install" in err[0]
