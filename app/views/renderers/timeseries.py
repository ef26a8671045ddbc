"""``TimeSeries``: channels drawn with pyqtgraph, ``TimeSeriesLabels`` ranges as (draggable) regions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg

from app.models.config import ConfigTag
from app.services.media import MediaError, ResolvedMedia, load_timeseries, timeseries_spec
from app.views.renderers.audio import AudioRenderer
from app.views.renderers.common import EVALUATOR_COLOURS

if TYPE_CHECKING:
    from app.views.renderers import TaskView


class TimeSeriesRenderer(AudioRenderer):
    fixed_y = False  # y follows the data: ranges stay region items spanning the view
    def __init__(self, host: TaskView, obj: ConfigTag, controls: list[ConfigTag]) -> None:
        super().__init__(host, obj, controls)
        self.set_title(obj.name, "time series")
        self.play_button.hide()
        self.plot.showAxis("left")
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setLabel("bottom", obj.attrs.get("timeColumn") or "index")
        self.plot.setMaximumHeight(260)
        self.plot.addLegend(offset=(-10, 10))

    def set_task(self, value: Any, media: ResolvedMedia | None, items_hint: list[dict[str, Any]]) -> None:
        for c in self.curves:
            self.plot.removeItem(c)
        self.curves = []
        self.notice.hide()
        config = self.host.config
        if config is None:  # never: renderers are built for the config being shown
            return
        spec = timeseries_spec(config, self.obj)
        try:
            data = load_timeseries(value, spec, self.host.media_root, self.obj.name)
        except (MediaError, OSError) as exc:
            self._fail(str(exc))
            return
        legends = {c: (leg, col) for c, leg, col in spec.channels}
        finite = data.time[np.isfinite(data.time)]
        for i, (col, ys) in enumerate(data.columns.items()):
            leg, colour = legends.get(col, (col, None))
            curve = self.plot.plot(data.time, ys, pen=pg.mkPen(colour or EVALUATOR_COLOURS[i % 8], width=1.5),
                                   name=leg)
            self.curves.append(curve)
        if finite.size:
            self.duration = float(finite.max())
            self.plot.setXRange(float(finite.min()), self.duration, padding=0.01)
        self.plot.enableAutoRange(axis="y")
        self.info.setText(f"{len(data.time)} points · {len(data.columns)} channel"
                          f"{'s' if len(data.columns) != 1 else ''} · Ctrl+wheel to zoom")
