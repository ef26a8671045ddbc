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
    return run_gui(data_dir=args.data_dir, demo=args.demo)


def _save_heatmap_png(*args: object, **kwargs: object) -> None:
    from app.views.heatmap import save_png

    save_png(*args, **kwargs)  # type: ignore[arg-type]


def run_gui(*, data_dir: str | None, demo: bool) -> int:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.models.store import Store, StoreError
    from app.views.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ReviewDesk")
    app.setOrganizationName("ReviewDesk")
    try:
        store = Store.open(data_dir)
    except StoreError as exc:
        QMessageBox.critical(None, "ReviewDesk cannot open its store", str(exc))
        return 1
    project_id = None
    if demo:
        from app.services.demo import ensure_demo

        project_id = ensure_demo(store)
    window = MainWindow(store, project_id=project_id)
    window.show()
    code = app.exec()
    store.close()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
