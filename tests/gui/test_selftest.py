"""``reviewdesk --self-test`` in-process: every view renders from the demo in a temporary store; a failure is
one FAIL line and exit 1 (the frozen build runs the same code: tests/packaging/test_frozen_build.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.views.selftest import run_self_test


def test_self_test_renders_every_view(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shots_dir: Path) -> None:
    from app.views import selftest

    real = selftest._painted

    def painted_and_saved(widget, what: str) -> str:  # the same check, plus a screenshot to look at
        widget.grab().save(str(shots_dir / f"selftest-{what.replace(' ', '-')}.png"))
        return real(widget, what)

    monkeypatch.setattr(selftest, "_painted", painted_and_saved)
    monkeypatch.setenv("REVIEWDESK_DATA_DIR", str(tmp_path / "must-not-be-used"))
    out, err = io.StringIO(), io.StringIO()
    assert run_self_test(out, err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["OK store", "OK review", "OK tasks", "OK dashboard", "OK window",
                                                  "OK self-test"]
    assert {"TextRenderer", "ImageRenderer", "AudioRenderer"} <= set(lines[1].split(": ")[1].split(" (")[0]
                                                                     .split(", "))
    assert "320 rows" in lines[2]
    assert err.getvalue() == ""
    assert not (tmp_path / "must-not-be-used").exists()  # the user's store is never opened


def test_self_test_fails_with_one_line_naming_the_view(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "res").mkdir()  # a resources folder without the demo: what a build missing its data looks like
    monkeypatch.setenv("REVIEWDESK_RESOURCES", str(tmp_path / "res"))
    out, err = io.StringIO(), io.StringIO()
    assert run_self_test(out, err) == 1
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAIL store: "), lines
    assert "OK self-test" not in out.getvalue()


def test_a_view_that_renders_blank_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.views import selftest

    def blank(widget: object, what: str) -> str:
        raise selftest.SelfTestError(f"{what} rendered a blank image")

    monkeypatch.setattr(selftest, "_painted", blank)
    out, err = io.StringIO(), io.StringIO()
    assert run_self_test(out, err) == 1
    assert err.getvalue().strip() == "FAIL window: SelfTestError: the review view rendered a blank image"
