"""A bounded, fair queue for heavy computations on a shared server.

At most ``slots`` heavy computations run at once; others wait in FIFO order, learn
their position while they wait (to show it), and can be cancelled.  A per-request time
limit is enforced through the method's progress callback (:func:`deadline`), so nothing
is killed mid-tensor-operation and the model is always left clean.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from .errors import Cancelled


class ComputeGate:
    def __init__(self, slots: int = 2):
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: list[int] = []
        self._ids = itertools.count()
        self.max_running_seen = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def slot(
        self,
        on_wait: Optional[Callable[[int], None]] = None,
        cancelled: Optional[Callable[[], bool]] = None,
        poll_s: float = 0.2,
    ) -> Iterator[None]:
        """Hold one of the slots for the block.  While waiting, ``on_wait(position)`` is
        called (1 = next) every ``poll_s``; if ``cancelled()`` turns true, or ``on_wait``
        raises, the ticket leaves the queue and the exception propagates
        (:class:`Cancelled` for ``cancelled``)."""
        ticket = next(self._ids)
        with self._cond:
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    pos = self._waiting.index(ticket)
                    if pos == 0 and self._running < self.slots:
                        self._waiting.pop(0)
                        self._running += 1
                        self.max_running_seen = max(self.max_running_seen, self._running)
                        self._cond.notify_all()
                        break
                if cancelled is not None and cancelled():
                    raise Cancelled("cancelled while waiting in the queue")
                if on_wait is not None:
                    on_wait(pos + 1)
                with self._cond:
                    self._cond.wait(poll_s)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


def deadline(seconds: float, progress: Optional[Callable[[int, int], object]] = None,
             cancelled: Optional[Callable[[], bool]] = None) -> Callable[[int, int], None]:
    """Wrap a progress callback so that it raises :class:`Cancelled` past ``seconds``
    or when ``cancelled()`` is true."""
    start = time.monotonic()

    def cb(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("cancelled")
        if time.monotonic() - start > seconds:
            raise Cancelled(f"stopped: over the {seconds:.0f} s time limit for one computation")
        if progress is not None:
            progress(done, total)

    return cb
