"""ReviewDesk: offline-first reviewer's desk for annotation QA on Label Studio projects.

The package is layered (see DESIGN.md section 2 and the import-linter contracts in
pyproject.toml):

- ``app.metrics``  pure numpy/pandas agreement statistics (imports nothing of ``app``)
- ``app.models``   SQLite store (SQLAlchemy + Alembic), labeling-config parser, LS JSON codec
- ``app.sync``     Label Studio client and sync engine
- ``app.services`` Qt-free services returning frozen dataclasses and ``Changes``
- ``app.cli``      command-line interface (``reviewdesk SUBCOMMAND``)
- ``app.views``    PySide6 widgets (the only Qt code, with ``app.main``)
"""

__version__ = "0.1.0"
