"""Signals during a run: Ctrl-C and SIGTERM end a run at once while it builds and compiles, then ask it
to stop at the end of the current training call (it checkpoints first; ``Interrupted``), and never
interrupt a checkpoint's write (``StopRequests.shielded``)."""

import contextlib
import signal
import threading


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM: the run saved a checkpoint at ``step`` and stopped."""

    def __init__(self, step: int, signal_name: str):
        super().__init__(f"{signal_name}: interrupted at step {step:,}; continue with --resume")
        self.step = step


class StopRequests:
    """Ctrl-C / SIGTERM while a run builds, compiles and makes its first training call end the
    process at once (the signals' default action: nothing is trained yet, and a Python handler
    could not run before a compilation returns). From ``graceful()`` on, the first one asks the run
    to stop at the next call boundary (it then checkpoints); a second Ctrl-C raises
    KeyboardInterrupt at once."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def graceful(self) -> None:
        for sig in self._previous:
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        del frame
        self.signal_name = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C is immediate

    def _record(self, signum, frame):
        del frame
        self.signal_name = self.signal_name or signal.Signals(signum).name

    @contextlib.contextmanager
    def shielded(self):
        """Signals during a checkpoint's write wait for it to finish: they are recorded (the run then
        stops, saved), never raised inside orbax's writers."""
        handlers = {sig: signal.signal(sig, self._record) for sig in self._previous}
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, signal.SIG_DFL)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
