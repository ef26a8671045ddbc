"""Light and dark themes: the Fusion style with a palette, following the system's colour scheme by default.

Style sheets across the views name palette roles (``palette(base)``, ``palette(window)``, ``palette(text)``,
``palette(mid)``) instead of fixed colours, so they follow the theme when it changes. Rich text (HTML in
labels and text browsers) cannot name palette roles; it takes its colours from :func:`tone` when it is
built, so the next task, or the next refresh, is drawn in the new theme.

The setting is ``Settings.theme``: ``system`` (the default; follows ``QStyleHints.colorScheme`` and its
changes), ``light`` or ``dark``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

MODES = ("system", "light", "dark")


@dataclass(frozen=True)
class Tones:
    """Colours for rich text, chosen to keep contrast on the theme's backgrounds."""

    ink: str          # body text
    muted: str        # secondary text (captions, hints)
    page: str         # the grey page behind cards
    card: str         # a card's background
    border: str       # thin borders
    raised: str       # a slightly raised background (table headers, quoted text)
    focus_bg: str     # the focused row / annotation
    focus_border: str
    differs_bg: str   # a cell that differs from its neighbours
    server_bg: str    # another reviewer's (pulled, read-only) decision
    server_ink: str
    accept: str
    fix: str
    reject: str
    escalate: str


LIGHT = Tones(ink="#1f2430", muted="#5f6673", page="#f3f4f6", card="#ffffff", border="#d9dce1",
              raised="#f6f8fa", focus_bg="#dbe9ff", focus_border="#2f6fdf", differs_bg="#fff3b0",
              server_bg="#e8f1fb", server_ink="#1f4e8c", accept="#1b7f3b", fix="#b26a00", reject="#b00020",
              escalate="#8a4fbf")
DARK = Tones(ink="#e6e8eb", muted="#a3aab5", page="#1e2024", card="#2a2d33", border="#474c55",
             raised="#33373e", focus_bg="#203a63", focus_border="#6ea0ff", differs_bg="#5a4a12",
             server_bg="#1f3550", server_ink="#9cc3f5", accept="#5cc97f", fix="#f0b45b", reject="#ff7b86",
             escalate="#c39af0")

_state = {"mode": "system", "dark": False, "hooked": False}


def system_is_dark() -> bool:
    """Whether the platform asks for a dark colour scheme (Qt 6.5+; ``False`` where it cannot tell)."""
    hints = QGuiApplication.styleHints()
    return bool(hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark)


def is_dark() -> bool:
    return bool(_state["dark"])


def mode() -> str:
    return str(_state["mode"])


def tone() -> Tones:
    """The rich-text colours of the theme in use."""
    return DARK if _state["dark"] else LIGHT


def dark_palette() -> QPalette:
    t = DARK
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: t.page, QPalette.ColorRole.WindowText: t.ink,
        QPalette.ColorRole.Base: t.card, QPalette.ColorRole.AlternateBase: t.raised,
        QPalette.ColorRole.ToolTipBase: t.raised, QPalette.ColorRole.ToolTipText: t.ink,
        QPalette.ColorRole.PlaceholderText: t.muted, QPalette.ColorRole.Text: t.ink,
        QPalette.ColorRole.Button: t.raised, QPalette.ColorRole.ButtonText: t.ink,
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Light: "#4a4f58",
        QPalette.ColorRole.Midlight: "#3c4048", QPalette.ColorRole.Mid: t.border, QPalette.ColorRole.Dark: "#15171a",
        QPalette.ColorRole.Shadow: "#000000", QPalette.ColorRole.Highlight: "#3d6fd1",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#8ab4ff",
        QPalette.ColorRole.LinkVisited: "#c39af0",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6d737d"))
    return p


def light_palette() -> QPalette:
    t = LIGHT
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#eff0f2", QPalette.ColorRole.WindowText: t.ink,
        QPalette.ColorRole.Base: t.card, QPalette.ColorRole.AlternateBase: t.raised,
        QPalette.ColorRole.ToolTipBase: "#ffffdc", QPalette.ColorRole.ToolTipText: t.ink,
        QPalette.ColorRole.PlaceholderText: "#8a909b", QPalette.ColorRole.Text: t.ink,
        QPalette.ColorRole.Button: "#f5f6f7", QPalette.ColorRole.ButtonText: t.ink,
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Light: "#ffffff",
        QPalette.ColorRole.Midlight: "#e9eaec", QPalette.ColorRole.Mid: t.border, QPalette.ColorRole.Dark: "#a0a4ab",
        QPalette.ColorRole.Shadow: "#6b6f76", QPalette.ColorRole.Highlight: "#2f6fdf",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#1f5fbf",
        QPalette.ColorRole.LinkVisited: "#6a3fa0",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9aa0a8"))
    return p


def apply(app: QApplication, wanted: str = "system") -> bool:
    """Apply the theme ``wanted`` (``system``/``light``/``dark``) to ``app``; returns whether it is dark.

    With ``system`` the theme follows later changes of the platform's colour scheme too."""
    if wanted not in MODES:
        wanted = "system"
    dark = system_is_dark() if wanted == "system" else wanted == "dark"
    _state["mode"], _state["dark"] = wanted, dark
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if dark else light_palette())
    # a widget's own style sheet resolves ``palette(...)`` when it is polished: polish those again
    for w in app.allWidgets():
        if w.styleSheet():
            w.setStyleSheet(w.styleSheet() + " ")  # a changed sheet is parsed and applied anew
            w.setStyleSheet(w.styleSheet()[:-1])
    hints = QGuiApplication.styleHints()
    if hints is not None and not _state["hooked"]:
        _state["hooked"] = True
        hints.colorSchemeChanged.connect(lambda _scheme: _follow_system(app))
    return dark


def _follow_system(app: QApplication) -> None:
    if _state["mode"] == "system":
        apply(app, "system")
