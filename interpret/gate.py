"""A bounded, fair queue for the computations of a shared server, and their time limit.

At most ``slots`` heavy computations run at once (and, in a lane of their own, at most
``light_slots`` light ones: predictions, instant CAMs, layer maps, so that these never
wait behind a long Integrated Gradients); others wait in FIFO order, learn their
position while they wait (to show it), and can be cancelled.

The time limit ends the work, not only the wait: a :class:`Deadline` is checked

* in the method's progress callback (:meth:`Deadline.progress`), and
* before every module of the model runs (:func:`enforce`: a thread-filtered forward
  pre-hook on every submodule, through :class:`interpret.hooks.HookSet`, removed in
  ``finally``),

so a method that reports no progress (Grad-CAM, a prediction) or whose forward is slow
stops at the next module call past the deadline, with :class:`TimeLimit` (a
:class:`Cancelled`) and its sentence, :func:`limit_message`.  Nothing is killed
mid-tensor-operation, and the model is left as it was: the hooks live only within the
call, and every method undoes its own changes in ``finally``.

Nesting: work that already holds a slot in this thread (a heavy job that needs a
prediction) runs a nested request at once under the same deadline, without queueing
again (with one slot, queueing again would wait for itself).
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Optional

from .errors import Cancelled

_local = threading.local()


class TimeLimit(Cancelled):
    """A computation ran past the server's time limit and was stopped."""


def limit_message(seconds: float) -> str:
    """The sentence for a computation stopped at a time limit of ``seconds``."""
    amount = f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"
    return (f"stopped after {amount}: this server's time limit for one computation "
            "(heavy_timeout_s). Try a faster method or fewer steps, or ask the operator "
            "for a longer limit")


class Deadline:
    """``seconds`` from now (``clock``: a monotonic clock, replaceable in tests), or
    earlier when ``cancelled()`` turns true."""

    def __init__(self, seconds: float, cancelled: Optional[Callable[[], bool]] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.seconds = float(seconds)
        self._clock = clock
        self._cancelled = cancelled
        self.start = clock()

    def remaining(self) -> float:
        return self.seconds - (self._clock() - self.start)

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelled, :class:`TimeLimit` past the deadline."""
        if self._cancelled is not None and self._cancelled():
            raise Cancelled("cancelled")
        if self._clock() - self.start > self.seconds:
            raise TimeLimit(limit_message(self.seconds))

    def progress(self, progress: Optional[Callable[[int, int], object]] = None
                 ) -> Callable[[int, int], None]:
        """A progress callback that checks the deadline, then calls ``progress``."""
        def cb(done: int, total: int) -> None:
            self.check()
            if progress is not None:
                progress(done, total)

        return cb


def current() -> Optional[Deadline]:
    """The deadline of the computation this thread runs inside a gate slot, if any."""
    return getattr(_local, "deadline", None)


@contextmanager
def enforce(deadline: Optional[Deadline], module) -> Iterator[None]:
    """Within the block, every call of ``module`` or of any of its submodules made by
    this thread first checks ``deadline`` (and raises past it).  No-op for None, and for
    TorchScript modules, which take no hooks (their progress callbacks still check)."""
    if deadline is None or module is None:
        yield
        return
    import torch

    from .hooks import hooks

    with hooks() as hs:
        for m in module.modules():
            if not isinstance(m, torch.jit.ScriptModule):
                hs.forward_pre(m, lambda mod, inputs: deadline.check())
        yield


class ComputeGate:
    def __init__(self, slots: int = 2, light_slots: Optional[int] = None):
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.slots = slots
        self.light_slots = max(1, light_slots if light_slots is not None else 2 * slots)
        self._cond = threading.Condition()
        self._running = {False: 0, True: 0}
        self._waiting: dict = {False: [], True: []}
        self._ids = itertools.count()
        self.max_running_seen = 0
        self.max_light_seen = 0

    @property
    def running(self) -> int:
        """Heavy computations running now."""
        return self._running[False]

    @property
    def waiting(self) -> int:
        """Heavy computations waiting now."""
        return len(self._waiting[False])

    @property
    def light_running(self) -> int:
        return self._running[True]

    @contextmanager
    def slot(
        self,
        on_wait: Optional[Callable[[int], None]] = None,
        cancelled: Optional[Callable[[], bool]] = None,
        poll_s: float = 0.2,
        light: bool = False,
    ) -> Iterator[None]:
        """Hold one of the slots (of the light lane with ``light``) for the block.
        While waiting, ``on_wait(position)`` is called (1 = next) every ``poll_s``; if
        ``cancelled()`` turns true, or ``on_wait`` raises, the ticket leaves the queue
        and the exception propagates (:class:`Cancelled` for ``cancelled``).  A thread
        that already holds a slot of this gate enters at once (nested work)."""
        held = getattr(_local, "held", None)
        if held is not None and held.get(id(self)):
            yield
            return
        lane, limit = light, (self.light_slots if light else self.slots)
        ticket = next(self._ids)
        with self._cond:
            self._waiting[lane].append(ticket)
        try:
            while True:
                with self._cond:
                    pos = self._waiting[lane].index(ticket)
                    if pos == 0 and self._running[lane] < limit:
                        self._waiting[lane].pop(0)
                        self._running[lane] += 1
                        if light:
                            self.max_light_seen = max(self.max_light_seen, self._running[lane])
                        else:
                            self.max_running_seen = max(self.max_running_seen, self._running[lane])
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
                if ticket in self._waiting[lane]:
                    self._waiting[lane].remove(ticket)
                self._cond.notify_all()
            raise
        if held is None:
            held = _local.held = {}
        held[id(self)] = True
        try:
            yield
        finally:
            held.pop(id(self), None)
            with self._cond:
                self._running[lane] -= 1
                self._cond.notify_all()

    def run(self, work: Callable[[Callable[[int, int], None]], object], seconds: float, *,
            module=None, progress: Optional[Callable[[int, int], object]] = None,
            on_wait: Optional[Callable[[int], None]] = None,
            cancelled: Optional[Callable[[], bool]] = None, light: bool = False,
            clock: Callable[[], float] = time.monotonic):
        """``work(progress)`` in a slot, stopped ``seconds`` after it starts running (not
        counting the queue): the deadline is checked in the progress callback and, with
        ``module`` (the model's ``nn.Module``), before each of its modules runs.
        Nested in another slot of this thread: at once, under the outer deadline."""
        outer = current()
        if outer is not None and getattr(_local, "held", {}).get(id(self)):
            with enforce(outer, module):
                return work(outer.progress(progress))
        with self.slot(on_wait=on_wait, cancelled=cancelled, light=light):
            dl = Deadline(seconds, cancelled, clock)
            _local.deadline = dl
            try:
                with enforce(dl, module) if module is not None else nullcontext():
                    return work(dl.progress(progress))
            finally:
                _local.deadline = None


def deadline(seconds: float, progress: Optional[Callable[[int, int], object]] = None,
             cancelled: Optional[Callable[[], bool]] = None) -> Callable[[int, int], None]:
    """Wrap a progress callback so that it raises :class:`Cancelled` (a
    :class:`TimeLimit`) past ``seconds`` or when ``cancelled()`` is true."""
    return Deadline(seconds, cancelled).progress(progress)
