"""The bundled demo project: imported once into a store, then reused."""

from __future__ import annotations

from app.models.store import Store
from app.resources import demo_dir
from app.services.projects import ProjectService

DEMO_TITLE = "Demo: support ticket triage"


def ensure_demo(store: Store) -> int:
    """Return the demo project's id, importing the bundled ``app/resources/demo`` on first use."""
    svc = ProjectService(store)
    existing = svc.find_project_by_title(DEMO_TITLE)
    if existing is not None:
        return existing
    folder = demo_dir()
    config = (folder / "config.xml").read_text(encoding="utf-8")
    result = svc.import_file(folder / "tasks.json", config, DEMO_TITLE, media_root=str(folder))
    pid = result.summary.project_id
    instructions = folder / "instructions.html"
    if instructions.exists():
        svc.set_instructions(pid, instructions.read_text(encoding="utf-8"))
    return pid
