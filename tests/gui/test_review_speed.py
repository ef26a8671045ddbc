"""What the review loop's speed work (issue 14.3) must keep: the same behaviour, less work per press.

Timings are in benchmarks/bench_review.py; these tests check the behaviour the shortcuts must not change.
"""

from __future__ import annotations

import gc

from PySide6.QtWidgets import QApplication

from app.views.review_loop import BusyMark, settle_heap
from tests.gui.helpers import shown_window, wait_for


def test_settle_heap_collects_cycles_and_freezes_the_rest_only_for_large_queues() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    try:
        assert settle_heap(9_999, threshold=10_000) is False
        assert gc.get_freeze_count() == 0
        Node()  # a reference cycle: only the cycle collector frees it
        assert any(type(o) is Node for o in gc.get_objects())
        assert settle_heap(10_000, threshold=10_000) is True
        assert not any(type(o) is Node for o in gc.get_objects())  # collected before the freeze
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        assert settle_heap(10_000, threshold=10_000) is True  # unfreezes first: does not pile up
        assert abs(gc.get_freeze_count() - frozen) < frozen // 2
    finally:
        gc.unfreeze()


def test_busy_mark_shows_only_a_slow_commit(qtbot) -> None:
    seen: list[bool] = []
    mark = BusyMark(seen.append, after_ms=30)
    mark.set(True)
    mark.set(False)  # a quick commit: nothing shown, nothing to undo
    qtbot.wait(80)
    assert seen == []
    mark.set(True)
    qtbot.waitUntil(lambda: seen == [True], timeout=2000)  # a slow one greys the header out...
    mark.set(False)
    assert seen == [True, False]  # ...and back when it is done


def test_a_decision_leaves_the_header_enabled_and_the_next_task_shown(qtbot, demo_store) -> None:
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    panel = w.review
    panel.setFocus()
    s = panel.session
    assert s is not None and s.current is not None
    first = s.current.id
    for _ in range(len(s.current.annotations)):
        panel.decide("accept")
        wait_for(lambda: not panel.busy())
    QApplication.processEvents()
    assert s.current is not None and s.current.id != first
    assert panel.header.isEnabled()
    assert f"Task {s.current.server_id or s.current.id}" in panel.header.text()


def history_texts(panel) -> list[tuple[str, str]]:
    return [(panel.history.item(i).text(), panel.history.item(i).data(256))
            for i in range(panel.history.count())]


def test_session_list_updated_in_place_equals_a_rebuilt_one(qtbot, demo_store) -> None:
    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    panel = w.review
    s = panel.session
    assert s is not None
    inserted = 0
    for i in range(24):  # beyond the 20 entries the list keeps
        if s.current is None:
            break
        before = panel.history.item(0)
        if i == 7:
            panel.undo()  # a retraction: the entry below is struck through (a rebuild)
        panel.decide("reject", reason="Wrong label") if i % 3 == 1 else panel.decide("accept")
        wait_for(lambda: not panel.busy())
        QApplication.processEvents()
        inserted += before is not None and panel.history.item(1) is before  # kept, not rebuilt
        incremental = history_texts(panel)
        panel._history_key = ()
        panel._render_history()  # what a rebuild shows
        assert history_texts(panel) == incremental, f"after decision {i}"
    assert panel.history.count() == 20
    assert inserted >= 10  # the in-place path was taken


def test_card_rows_paint_exactly_what_a_rich_text_label_painted(qtbot, demo_store) -> None:
    """The compare rows are a RichBlock now; pixel for pixel what the word-wrapped label showed."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from app.views.renderers.common import WrapLabel
    from app.views.renderers.rich_block import RichBlock

    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    panel = w.review
    s = panel.session
    assert s is not None
    compared = 0
    for _ in range(4):  # a few tasks, focus moved: bold, marks, colours, status badges
        QApplication.processEvents()
        for card in panel.task_view.cards.values():
            rows = getattr(card, "rows", None)
            if not isinstance(rows, RichBlock) or not rows.isVisible() or not rows.text():
                continue
            assert "<table" in rows.text()
            images = []
            label_sizes: tuple = ()
            for kind in (WrapLabel, RichBlock):
                host = QWidget()
                qtbot.addWidget(host)
                lay = QVBoxLayout(host)
                lay.setContentsMargins(0, 0, 0, 0)
                widget = kind()
                widget.setFont(rows.font())
                widget.setText(rows.text())
                lay.addWidget(widget)
                lay.addStretch(1)
                host.resize(rows.width(), rows.height() + 40)
                host.show()
                QApplication.processEvents()
                assert widget.height() == rows.height()  # the same height for the same width
                sizes = (widget.sizeHint(), widget.minimumSizeHint(), widget.heightForWidth(rows.width()),
                         widget.heightForWidth(rows.width() // 2))
                if kind is WrapLabel:
                    label_sizes = sizes
                else:
                    assert sizes == label_sizes  # the same size questions get the same answers
                images.append(host.grab().toImage())
            assert images[0] == images[1], f"card {card.control.name}"
            compared += 1
        panel.decide("accept")
        wait_for(lambda: not panel.busy())
    assert compared >= 4


def test_counts_are_read_again_only_when_a_decision_can_move_tasks_between_queues(qtbot, demo_store, monkeypatch
                                                                                   ) -> None:
    """On the plain queue an accept or a reject leaves both counts as they are (no count is read: each reads the
    whole project, ~70 ms at 100k tasks); an escalation moves its task to the expert queue and the bar says so."""
    import app.views.review_panel as rp
    from app.services.queues import plain_counts

    store, pid = demo_store
    calls: list[int] = []

    def counting(store_: object, project_id: int) -> object:
        calls.append(project_id)
        return plain_counts(store_, project_id)  # type: ignore[arg-type]

    monkeypatch.setattr(rp, "plain_counts", counting)
    w = shown_window(qtbot, store, pid)
    panel = w.review
    bar = panel.queue_bar
    wait_for(lambda: panel._counts_job is None and calls)
    start = plain_counts(store, pid)
    assert bar.buttons["expert"].text() == f"E&xpert ({start.expert})"
    n = len(calls)
    panel.decide("accept")
    wait_for(lambda: not panel.busy())
    panel.decide("reject", reason="Wrong label")
    wait_for(lambda: not panel.busy())
    QApplication.processEvents()
    assert len(calls) == n and panel._counts_job is None  # nothing to count again
    assert plain_counts(store, pid) == start  # and indeed nothing moved
    panel.decide("escalate", reason="Edge case")
    wait_for(lambda: not panel.busy())
    wait_for(lambda: panel._counts_job is None and len(calls) == n + 1)
    after = plain_counts(store, pid)
    assert after.expert == start.expert + 1
    assert bar.buttons["expert"].text() == f"E&xpert ({after.expert})"
    assert bar.buttons["reviewer"].text() == f"R&eviewer ({after.reviewer})"


def test_counts_asked_for_while_one_runs_run_once_more_after_it(qtbot, demo_store, monkeypatch) -> None:
    """Asked for again and again while a count runs: one more count after it (with the state of then), not a
    backlog of one per ask; the bar ends with the store's numbers."""
    import threading

    import app.views.review_panel as rp
    from app.services.queues import plain_counts

    store, pid = demo_store
    gate = threading.Event()
    calls: list[int] = []

    def slow(store_: object, project_id: int) -> object:
        calls.append(project_id)
        gate.wait(10)
        return plain_counts(store_, project_id)  # type: ignore[arg-type]

    w = shown_window(qtbot, store, pid)
    panel = w.review
    wait_for(lambda: panel._counts_job is None)
    monkeypatch.setattr(rp, "plain_counts", slow)
    panel._refresh_counts()
    wait_for(lambda: len(calls) == 1)
    panel.decide("escalate", reason="Edge case")  # a real change while the count runs
    wait_for(lambda: not panel.busy())
    for _ in range(5):
        panel._refresh_counts()
    assert len(calls) == 1
    gate.set()
    wait_for(lambda: panel._counts_job is None and len(calls) == 2)
    QApplication.processEvents()
    assert len(calls) == 2  # one more, not six
    now = plain_counts(store, pid)
    assert panel.queue_bar.buttons["expert"].text() == f"E&xpert ({now.expert})"


def test_a_failed_count_does_not_stop_later_ones(qtbot, demo_store, monkeypatch) -> None:
    import app.views.review_panel as rp
    from app.services.queues import plain_counts

    store, pid = demo_store
    w = shown_window(qtbot, store, pid)
    panel = w.review
    wait_for(lambda: panel._counts_job is None)

    def broken(store_: object, project_id: int) -> object:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(rp, "plain_counts", broken)
    panel._refresh_counts()
    wait_for(lambda: panel._counts_job is None)
    monkeypatch.setattr(rp, "plain_counts", plain_counts)
    panel.decide("escalate", reason="Edge case")
    wait_for(lambda: not panel.busy())
    now = plain_counts(store, pid)
    wait_for(lambda: panel.queue_bar.buttons["expert"].text() == f"E&xpert ({now.expert})")


def test_rich_block_size_answers_come_from_the_shared_cache_unchanged(qtbot) -> None:
    """A text measured once (by any block, in any font) gives the same answers as measured afresh: the cache is
    keyed by text and font, and a change of font or text asks again."""
    from PySide6.QtGui import QFont

    from app.views.renderers import rich_block
    from app.views.renderers.rich_block import RichBlock, clear_size_cache

    text = ("<table cellspacing='0' cellpadding='1'><tr><td>&nbsp;</td><td><b>Anna K</b></td>"
            "<td style='padding-left:8px'>positive, with a long explanation that wraps</td></tr></table>")

    def answers(font_pt: float, fresh: bool) -> tuple:
        if fresh:
            clear_size_cache()
        block = RichBlock()
        qtbot.addWidget(block)
        f = QFont(block.font())
        f.setPointSizeF(font_pt)
        block.setFont(f)
        block.setText(text)
        return (block.sizeHint(), block.minimumSizeHint(), block.heightForWidth(120), block.heightForWidth(400))

    small_fresh = answers(9, True)
    big_fresh = answers(15, True)
    assert small_fresh != big_fresh  # the font matters
    clear_size_cache()
    assert answers(9, False) == small_fresh and answers(15, False) == big_fresh  # measured, then from the cache
    assert len(rich_block._SIZES) == 2
    assert answers(9, False) == small_fresh and answers(15, False) == big_fresh
    block = RichBlock(text)
    qtbot.addWidget(block)
    before = block.sizeHint()
    block.setText(text + "<p>one more line</p>")
    assert block.sizeHint().height() > before.height()  # a new text is measured, not served the old answer


def test_steady_tabs_lays_out_like_a_plain_tab_widget(qtbot) -> None:
    """A tab widget with the filter and one without, given the same changes (a label's text inside a page, a new
    tab, a longer title, a page that needs more room, a resize): the tab bar and the pages end where the plain
    one puts them after every change; requests that change nothing are dropped."""
    from PySide6.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

    from app.views.review_loop import SteadyTabs

    def make() -> tuple[QWidget, QTabWidget, QLabel, QWidget]:
        host = QWidget()
        qtbot.addWidget(host)
        lay = QVBoxLayout(host)
        tabs = QTabWidget()
        lay.addWidget(tabs)
        page = QWidget()
        inner = QVBoxLayout(page)
        label = QLabel("Remaining: 1 of 10")
        inner.addWidget(label)
        tabs.addTab(page, "Review")
        host.resize(500, 300)
        host.show()
        return host, tabs, label, page

    plain = make()
    steady = make()
    f = SteadyTabs.install(steady[1])

    def settle() -> None:
        for _ in range(6):
            QApplication.processEvents()

    def same() -> None:
        settle()
        a, b = plain[1], steady[1]
        assert a.tabBar().geometry() == b.tabBar().geometry()
        assert a.currentWidget().geometry() == b.currentWidget().geometry()
        assert a.minimumSizeHint() == b.minimumSizeHint() and a.sizeHint() == b.sizeHint()

    same()
    for i in range(5):  # what a key press does: a text changes, nothing the tab widget lays out does
        for _host, _tabs, label, _page in (plain, steady):
            label.setText(f"Remaining: {i} of 10")
        same()
    assert f.dropped > 0
    for _host, tabs, _label, _page in (plain, steady):
        tabs.addTab(QWidget(), "Side by side (table)")
    same()
    for _host, tabs, _label, _page in (plain, steady):
        tabs.setTabText(1, "Side by side — a much longer title than before")
    same()
    for _host, _tabs, _label, page in (plain, steady):
        page.setMinimumHeight(420)  # a page that needs more room than it has
    same()
    for host, _tabs, _label, _page in (plain, steady):
        host.resize(640, 520)
    same()
    assert steady[1].currentWidget().height() >= 420


def test_counters_label_width_only_grows(qtbot) -> None:
    from PySide6.QtWidgets import QLabel

    from app.views.review_loop import GrowingLabel

    label, plain = GrowingLabel(), QLabel()
    qtbot.addWidget(label)
    qtbot.addWidget(plain)
    widths = []
    for text in ("Decisions: 1", "Decisions: 1,234,567 · pending sync: 88", "Decisions: 2"):
        label.setText(text)
        plain.setText(text)
        widths.append(label.sizeHint().width())
        assert label.sizeHint().width() >= plain.sizeHint().width()
        assert label.sizeHint().height() == plain.sizeHint().height()
        assert label.minimumSizeHint().width() >= plain.minimumSizeHint().width()
    assert widths[1] > widths[0] and widths[2] == widths[1]  # grew with the text, did not shrink back
