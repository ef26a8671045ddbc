"""Metrics as of an audit point after real pushes and pulls (issue 16, point 2; docs/adr/0015).

Decisions are pushed to a real Label Studio and pulled back (fix annotations, ground-truth flags, decision
records in task meta); then an accept is undone and pushed (the flag cleared, a retract record in meta) and
more is decided. The report as of the event before the undo equals the report computed then."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app import api
from app.services.decisions import DecisionService
from tests.integration.helpers import decide, fixed, local_project

pytestmark = pytest.mark.integration


def _head(store: Any) -> int:
    with store.session() as s:
        return int(s.execute(text("SELECT max(id) FROM audit_events")).scalar())


def test_as_of_before_a_pushed_undo_and_later_pulls(ls, sync_service, rd_store, make_project) -> None:
    ls_pid = make_project(6)
    sync_service.pull(ls.url, ls_pid)
    pid = local_project(rd_store, ls_pid)
    t = [x["id"] for x in ls.tasks(ls_pid)]
    accepted = decide(rd_store, ls_pid, t[0], "accept", 0)
    decide(rd_store, ls_pid, t[1], "fix", 1, result=fixed("Shipping"))
    assert sync_service.push().synced == 2
    sync_service.pull(ls.url, ls_pid)  # brings the fix annotation and the flags back
    then = api.compute_metrics(rd_store, pid)
    assert then.event_id == _head(rd_store)

    DecisionService(rd_store).retract(accepted, reviewer="rev@example.com")
    decide(rd_store, ls_pid, t[2], "fix", 0, result=fixed("Other"))
    decide(rd_store, ls_pid, t[3], "reject", 2)
    sync_service.push()
    sync_service.pull(ls.url, ls_pid)  # the cleared flag, the new fix annotation, the records in meta
    now = api.compute_metrics(rd_store, pid)
    assert now.report != then.report

    past = api.compute_metrics(rd_store, pid, as_of=then.event_id)
    assert past.report == then.report
    assert past.as_of is not None and past.as_of.rewind.decisions_after == 3
    assert past.as_of.rewind.annotations_added_after >= 1  # the second fix's annotation, pulled later
