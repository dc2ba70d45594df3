"""A readers/writer lock for one shared model.

Our own hooks are thread-filtered, so ordinary explanations run concurrently (readers);
a method that must install hooks every thread would see (Captum's DeepLIFT) takes the
writer side and runs alone.
"""

from __future__ import annotations

import threading


class RWLock:
    """Many readers or one writer; ``with lock.read():`` / ``with lock.write():``."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self) -> "_Held":
        return _Held(self, False)

    def write(self) -> "_Held":
        return _Held(self, True)


class _Held:
    def __init__(self, lock: RWLock, write: bool):
        self.lock, self.write = lock, write

    def __enter__(self):
        lock = self.lock
        with lock._cond:
            if self.write:
                while lock._writer or lock._readers:
                    lock._cond.wait()
                lock._writer = True
            else:
                while lock._writer:
                    lock._cond.wait()
                lock._readers += 1
        return self

    def __exit__(self, *exc):
        lock = self.lock
        with lock._cond:
            if self.write:
                lock._writer = False
            else:
                lock._readers -= 1
            lock._cond.notify_all()
