"""Entry point of the ``reviewdesk`` console script: CLI subcommands, or the GUI."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from app import cli

    args = cli.build_parser().parse_args(argv)
    if args.command is not None:
        if args.command == "metrics":
            from app.cli import metrics as metrics_cli

            metrics_cli.PNG_RENDERER = _save_heatmap_png
        return cli.run(args)
    if args.self_test:
        from app.views.selftest import run_self_test

        return run_self_test()
    return run_gui(data_dir=args.data_dir, demo=args.demo)


def _save_heatmap_png(*args: object, **kwargs: object) -> None:
    from app.views.heatmap import save_png

    save_png(*args, **kwargs)  # type: ignore[arg-type]


# What Qt's xcb platform plugin loads on Linux (Debian package -> library); PySide6 wheels do not ship them.
XCB_LIBS = {
    "libxcb-cursor0": "libxcb-cursor.so.0", "libxcb-icccm4": "libxcb-icccm.so.4",
    "libxcb-keysyms1": "libxcb-keysyms.so.1", "libxcb-image0": "libxcb-image.so.0",
    "libxcb-render-util0": "libxcb-render-util.so.0", "libxcb-xinerama0": "libxcb-xinerama.so.0",
    "libxcb-randr0": "libxcb-randr.so.0", "libxcb-shape0": "libxcb-shape.so.0", "libxcb-xkb1": "libxcb-xkb.so.1",
    "libxkbcommon-x11-0": "libxkbcommon-x11.so.0",
}


def missing_xcb_packages(env: dict[str, str] | None = None) -> list[str]:
    """The Debian packages whose libraries Qt's xcb plugin would fail to load (empty when not on xcb).

    Qt aborts the process when its platform plugin cannot load, with a message that does not say what to
    install; this check runs first so the user gets one line naming the packages instead."""
    import ctypes
    import os

    env = dict(os.environ) if env is None else env
    platform = env.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith("xcb")):
        return []
    if not platform and (env.get("WAYLAND_DISPLAY") or not env.get("DISPLAY")):
        return []
    missing = []
    for pkg, lib in XCB_LIBS.items():
        try:
            ctypes.CDLL(lib)
        except OSError:
            missing.append(pkg)
    return missing


def run_gui(*, data_dir: str | None, demo: bool) -> int:
    missing = missing_xcb_packages()
    if missing:
        sys.stderr.write("ReviewDesk cannot open a window: Qt's X11 (xcb) plugin needs these system packages: "
                         f"{' '.join(missing)} (Debian/Ubuntu: sudo apt-get install {' '.join(missing)}).\n")
        return 1
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.models.store import Store, StoreError
    from app.views.main_window import MainWindow

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("ReviewDesk")
    app.setOrganizationName("ReviewDesk")
    try:
        store = Store.open(data_dir)
    except StoreError as exc:
        QMessageBox.critical(None, "ReviewDesk cannot open its store", str(exc))
        return 1
    from app.services import webhook
    from app.services.settings import load_settings
    from app.views import theme

    webhook.resume(store.data_dir)  # push summaries a previous run left queued: delivered in the background

    theme.apply(app, load_settings(store.data_dir).theme)
    project_id = None
    if demo:
        from app.services.demo import ensure_demo

        project_id = ensure_demo(store)
    window = MainWindow(store, project_id=project_id)
    window.show()
    code = app.exec()
    from app.services.dashboard import stop_metrics_process

    stop_metrics_process()  # a metrics process started ahead for a large project's dashboard
    store.close()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
