"""A matplotlib Qt canvas for live data: new points never cost a full draw.

The data lines are *animated* artists: a normal draw leaves them out, and the
canvas keeps that picture (axes, ticks, labels, legends) as its background.
``refresh()`` then shows the lines' new data by restoring the background and
drawing only the lines over it (blitting): a few milliseconds.

When something behind the lines changed (the axes' limits grew, a legend entry
came, a title changed: matplotlib marks the figure *stale*), the background is
drawn again, but in slices: one artist at a time, handing control back to the
event loop whenever ``SLICE_MS`` have passed, into a private buffer that
replaces the shown one only when it is complete. A full redraw (~60 ms on a
slow machine) thus never freezes the window for its whole length.

``draw()`` (what ``redraw_now``, resizes, zoom and pan use) still draws
everything at once, animated lines included. ``frame_drawn`` is emitted
whenever the shown picture changed.
"""
from __future__ import annotations

import time
from operator import attrgetter

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.transforms import Bbox
from PyQt6.QtCore import QTimer, pyqtSignal

SLICE_MS = 4  # a slice ends at the first artist that finishes past this


class BlitCanvas(FigureCanvasQTAgg):
    """``animated()`` returns the artists drawn over the background, in order."""

    frame_drawn = pyqtSignal()

    def __init__(self, figure, animated):
        super().__init__(figure)
        self._animated = animated
        self._background = None  # BufferRegion of the figure without its animated artists
        self._background_size = None
        self._render = None      # the generator of a sliced background draw in progress
        self._changed_meanwhile = False  # something changed between two slices
        # the next slice: a timer, not a posted event, so that timers already due (other
        # widgets', Qt's own) run between two slices instead of after the last one
        self._next_slice = QTimer(self, singleShot=True, interval=0)
        self._next_slice.timeout.connect(self._continue)
        self.full_draws = self.sliced_draws = self.blits = 0  # counters, for tests and benchmarks
        self.mpl_connect("draw_event", self._on_draw)

    # -- what the owner calls ------------------------------------------------------------
    @property
    def rendering(self) -> bool:
        """A sliced background draw is in progress (its end shows the lines)."""
        return self._render is not None

    def refresh(self) -> None:
        """Show the animated artists' current state: blit when the background is
        still right, else draw the background again, in slices."""
        if self._render is not None:
            return  # its end draws the lines as they are then
        if self._background is None or self.figure.stale or not self._same_size():
            self._start_render()
        else:
            self._blit()

    # -- full draws ----------------------------------------------------------------------
    def _on_draw(self, event) -> None:
        """After every normal draw: keep it as the background, then draw the lines."""
        if self.is_saving():  # savefig: the animated lines are in that draw already
            return
        self._render = None
        self._background = self.copy_from_bbox(self.figure.bbox)
        self._background_size = tuple(int(v) for v in self.figure.bbox.size)
        self._draw_animated(self.get_renderer())
        self.full_draws += 1
        self.frame_drawn.emit()

    def _draw_animated(self, renderer) -> None:
        for artist in self._animated():
            if self._shown(artist):
                artist.draw(renderer)

    @staticmethod
    def _shown(artist) -> bool:
        return artist.get_visible() and (artist.axes is None or artist.axes.get_visible())

    def _same_size(self) -> bool:
        w, h = self.figure.bbox.size
        return self._background_size == (int(w), int(h))

    def _blit(self) -> None:
        renderer = self.get_renderer()
        renderer.restore_region(self._background)
        self._draw_animated(renderer)
        boxes = [ax.bbox for ax in self.figure.axes if ax.get_visible()]
        if boxes:
            box = Bbox.union(boxes).padded(3)  # lines are clipped to their axes; markers' edges
            self.blit(Bbox.intersection(box, self.figure.bbox) or self.figure.bbox)
        self.blits += 1
        self.frame_drawn.emit()

    # -- the sliced background draw ----------------------------------------------------------
    def _start_render(self) -> None:
        if self.width() <= 0 or self.height() <= 0:
            return
        w, h = self.figure.bbox.size
        target = RendererAgg(int(w), int(h), self.figure.dpi)
        self._absorb_stale()
        self._changed_meanwhile = False
        self._render = self._steps(target)
        self._next_slice.start()

    def _continue(self) -> None:
        render = self._render
        if render is None:
            return
        if self.figure.stale:  # changed between slices: this draw may miss it
            self._changed_meanwhile = True
        deadline = time.perf_counter() + SLICE_MS / 1000
        try:
            while time.perf_counter() < deadline:
                next(render)
        except StopIteration:
            return
        finally:
            # drawing marks artists stale (ticks move, labels are placed), as it does
            # inside Figure.draw, which then calls the figure drawn: do the same
            self._absorb_stale()
            if self._changed_meanwhile and self._render is None:
                self.figure.stale = True  # drawn again at the next refresh
        self._next_slice.start()

    def _absorb_stale(self) -> None:
        self.figure.stale = False
        for ax in self.figure.axes:
            ax.stale = False

    def _steps(self, target):
        """Draw the figure's background into ``target``, one artist per step, as
        ``Figure.draw`` and ``Axes.draw`` would; then show it with the lines."""
        figure = self.figure
        figure.patch.draw(target)
        yield
        children = sorted((a for a in figure.get_children()
                           if a is not figure.patch and not a.get_animated()), key=attrgetter("zorder"))
        for artist in children:
            if isinstance(artist, Axes):
                yield from self._axes_steps(artist, target)
            else:
                artist.draw(target)
                yield
        if self._render is None or not self._same_size_as(target):
            return  # cancelled meanwhile (a full draw) or resized: it is out of date
        background = target.copy_from_bbox(figure.bbox)  # the picture behind the lines
        yield
        for artist in self._animated():  # then the lines, still out of sight
            if self._shown(artist):
                artist.draw(target)
                yield
        if self._render is None or not self._same_size_as(target):
            return
        self._render = None
        self._background, self._background_size = background, (int(target.width), int(target.height))
        self.get_renderer().restore_region(target.copy_from_bbox(figure.bbox))
        self.sliced_draws += 1
        self.update()
        self.frame_drawn.emit()

    def _same_size_as(self, target) -> bool:
        w, h = self.figure.bbox.size
        return (int(target.width), int(target.height)) == (int(w), int(h))

    @staticmethod
    def _axes_steps(ax, target):
        if not ax.get_visible():
            return
        ax.apply_aspect()
        ax.viewLim  # noqa: B018 - applies a pending autoscale, as Axes.draw does first
        artists = [a for a in ax.get_children() if a is not ax.patch and not a.get_animated()]
        framed = ax.axison and ax.get_frame_on()
        if not framed:
            artists = [a for a in artists if a not in ax.spines.values()]
        if not ax.axison:
            artists = [a for a in artists if a not in (ax.xaxis, ax.yaxis)]
        update_titles = getattr(ax, "_update_title_position", None)
        if update_titles is not None:  # a no-op for titles placed with set_title(y=...)
            update_titles(target)
        artists.sort(key=attrgetter("zorder"))
        if framed:
            artists.insert(0, ax.patch)
        for artist in artists:
            if artist is ax.xaxis or artist is ax.yaxis:
                yield from BlitCanvas._axis_steps(artist, target)
            else:
                artist.draw(target)
                yield

    @staticmethod
    def _axis_steps(axis, target):
        """``Axis.draw``, one tick per step (an axis is the costliest artist)."""
        if not axis.get_visible():
            return
        parts = ("_update_ticks", "_get_ticklabel_bboxes", "_update_label_position",
                 "_update_offset_text_position")
        if not all(hasattr(axis, part) for part in parts):  # another matplotlib: at once
            axis.draw(target)
            yield
            return
        ticks = axis._update_ticks()
        yield
        for tick in ticks:  # lays out its label (the costly part) and draws it
            tick.draw(target)
            yield
        boxes = axis._get_ticklabel_bboxes(ticks, target)  # laid out by now: cheap
        axis._update_label_position(target)
        axis.label.draw(target)
        axis._update_offset_text_position(*boxes)
        axis.offsetText.set_text(axis.major.formatter.get_offset())
        axis.offsetText.draw(target)
        axis.stale = False
        yield
