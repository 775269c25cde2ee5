"""The worker base relays a job's outcome to the GUI thread after every signal the job emitted before it."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal, Slot

from ui.common.worker import Worker


class FinishedFirstPool(ThreadPoolExecutor):
    """Returns each future only once its job has finished: the case where a done-callback would run at once."""

    def submit(self, fn, /, *args, **kwargs) -> Future:  # noqa: ANN001, ANN002, ANN003
        future = super().submit(fn, *args, **kwargs)
        future.exception()  # wait for it
        return future


class CountingWorker(Worker):
    item = Signal(int)


class Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[int] = []
        self.seen_at_result: int | None = None
        self.failure: tuple[str, bool] | None = None
        self.threads: set[int] = set()

    @Slot(int)
    def on_item(self, i: int) -> None:
        self.items.append(i)

    def on_result(self, result: object) -> None:
        self.seen_at_result = len(self.items)
        self.threads.add(threading.get_ident())

    def on_failure(self, message: str, is_bug: bool) -> None:
        self.failure = (message, is_bug)
        self.threads.add(threading.get_ident())


def test_result_arrives_after_the_last_item_even_when_the_job_already_finished(qtbot) -> None:
    worker = CountingWorker("test-worker")
    worker._pool.shutdown()
    worker._pool = FinishedFirstPool(max_workers=1, thread_name_prefix="test-worker")
    receiver = Receiver()
    worker.item.connect(receiver.on_item)

    def job() -> str:
        for i in range(2000):
            worker.item.emit(i)
        return "done"

    worker.submit(job, receiver.on_result, receiver.on_failure)
    qtbot.waitUntil(lambda: receiver.seen_at_result is not None, timeout=10_000)
    assert receiver.seen_at_result == 2000  # every item was delivered before the result
    assert receiver.threads == {threading.get_ident()}
    worker.shutdown()


def test_a_failing_job_is_described_on_the_gui_thread(qtbot) -> None:
    from playground.errors import KnownError

    worker = CountingWorker("test-worker")
    receiver = Receiver()

    def user_problem() -> None:
        raise KnownError("the model file is missing")

    worker.submit(user_problem, receiver.on_result, receiver.on_failure)
    qtbot.waitUntil(lambda: receiver.failure is not None, timeout=5000)
    assert receiver.failure == ("the model file is missing", False)

    receiver.failure = None

    def bug() -> None:
        raise ValueError("index out of range in the engine")

    worker.submit(bug, receiver.on_result, receiver.on_failure)
    qtbot.waitUntil(lambda: receiver.failure is not None, timeout=5000)
    message, is_bug = receiver.failure
    assert is_bug and "ValueError" in message and "Traceback" in message  # a bug is shown as one
    assert receiver.threads == {threading.get_ident()}
    worker.shutdown()
    worker.shutdown()  # twice is fine
