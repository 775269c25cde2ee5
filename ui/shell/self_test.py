"""``playground --self-test``: a smoke test of a built bundle (or a source checkout), as qutebrowser does.

Runs offscreen in a temporary data dir and checks, one line each with its time: the main window opens, a greedy
few-shot completion on the embedded model answers " Rome", the engine path and precision it ran on (the fused C++
step on the compiled kernels wherever they can exist: a bundle ships them prebuilt, a checkout with a compiler
builds them), a small HTML page renders (the grab is not blank), the demo image model draws one image, and the run
saved through the window's store reads back. In a frozen bundle it
also checks that nothing was written inside the bundle. Exit code 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

FEW_SHOT_SOURCE = ("Country: France\nCapital: Paris\n\nCountry: Japan\nCapital: Tokyo\n\n"
                   "Country: Kenya\nCapital: Nairobi\n\nCountry: Canada\nCapital: Ottawa\n\n")
FEW_SHOT_PROMPT = "Country: Italy\nCapital:"
EXPECTED = " Rome"
HTML_PAGE = ("<html><body style='margin:0;background:#ffffff'>"
             "<div style='width:120px;height:80px;background:#d02020'></div>"
             "<h1 style='color:#2040c0;font-family:sans-serif'>Playground</h1></body></html>")
COMPLETION_TIMEOUT_S = 600  # the first launch converts the bundled GGUF (~35 s on 2 cores) before loading it


class CheckFailed(Exception):
    """A self-test check did not hold; the message says what was seen."""


class _Report:
    def __init__(self) -> None:
        self.failures = 0

    def check(self, name: str, fn: Callable[[], str]) -> Any:
        """Run one check, print ``[ ok ]``/``[FAIL]`` with its time and detail; return True if it passed."""
        started = time.perf_counter()
        try:
            detail = fn()
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - a smoke test reports every failure and goes on
            ok, detail = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        else:
            ok = True
        self.failures += not ok
        print(f"[{' ok ' if ok else 'FAIL'}] {name:<16} {time.perf_counter() - started:6.1f} s  {detail}", flush=True)
        return ok


def _wait(signal: Any, timeout_s: float) -> tuple[Any, ...] | None:
    """Run the event loop until ``signal`` fires (return its arguments) or ``timeout_s`` passes (return None)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list[tuple[Any, ...]] = []

    def done(*args: Any) -> None:
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not got:
        loop.exec()
    signal.disconnect(done)
    return got[0] if got else None


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_self_test(embedded_model: Path | None = None, keep_data: bool = False) -> int:
    """Run every check; return 0 if all passed, 1 otherwise.

    ``embedded_model``: an already converted embedded model folder to use (tests pass the cached one); without it
    the engine reads the embedded GGUF directly (the frozen bundle's own, as a user's first launch does).
    """
    from playground import bundle, paths

    home = Path(tempfile.mkdtemp(prefix="playground-self-test-"))
    os.environ[paths.ENV_HOME] = str(home)
    paths.set_data_dir(None)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline is part of what is tested
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ui.shell.qt_env import qt_environment

    qt_environment()
    root = bundle.bundle_dir()
    gguf = bundle.bundled_gguf()
    if gguf is not None:
        from playground.models.embedded import ENV_GGUF

        os.environ.setdefault(ENV_GGUF, str(gguf))
    if embedded_model is not None:
        from playground.models.embedded import embedded_dir

        target = embedded_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path(embedded_model).resolve(), target_is_directory=True)
    before = _snapshot(root) if root is not None else None
    print(f"playground self-test: data dir {home}; bundle {root or '(not frozen)'}; "
          f"embedded model {'cached ' + str(embedded_model) if embedded_model else gguf or 'default lookup'}",
          flush=True)
    try:
        return _run_checks(root, before)
    finally:
        paths.set_data_dir(None)
        if not keep_data:
            shutil.rmtree(home, ignore_errors=True)


def _run_checks(root: Path | None, before: set[str] | None) -> int:
    import PySide6.QtWebEngineWidgets  # noqa: F401 - before the QApplication exists
    from PySide6.QtWidgets import QApplication

    from playground.runtime.runner import EngineRunner
    from ui.common.html_preview import HtmlPreview
    from ui.shell.crash import install_exception_hook
    from ui.shell.crash import log_path as crashes_log
    from ui.shell.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], "-platform", "offscreen"])
    crashes = install_exception_hook(app)  # as the app does: a bug in a slot is logged and shown
    report = _Report()
    state: dict[str, Any] = {}

    def open_window() -> str:
        window = state["window"] = MainWindow(EngineRunner(device="cpu"))
        window.show()
        app.processEvents()
        if window.store is None:
            raise CheckFailed("the sessions store did not open")
        if window.current_session is None:
            raise CheckFailed("no session was created")
        return f"{window.tabs.count()} tabs, model {window.current_model()}, session {window.current_session}"

    def completion() -> str:
        window = state["window"]
        tab = window.prompt_tab
        tab.source.setPlainText(FEW_SHOT_SOURCE)
        tab.prompt.setPlainText(FEW_SHOT_PROMPT)
        window.params.apply({"temperature": 0, "max_new_tokens": 4})
        window.params.stop.setText("\\n")
        failed: list[str] = []
        window.bridge.failed.connect(lambda message, _bug: failed.append(message))
        tab.run()
        got = _wait(tab.run_finished, COMPLETION_TIMEOUT_S)
        if got is None:
            raise CheckFailed(f"no result within {COMPLETION_TIMEOUT_S} s {failed or tab.error.text()}")
        result = got[0]
        text = result.first.text
        if not text.startswith(EXPECTED):
            raise CheckFailed(f"expected {EXPECTED!r}, got {text!r}")
        state["answer"] = text
        return f"{text!r}, {result.first.timings.tokens_per_s:.1f} tok/s"

    def engine_path() -> str:
        from playground.engine.fast import kernels

        info = state["window"].bridge.runner.loaded_info()
        if info is None:
            raise CheckFailed("no model is loaded")
        expected = root is not None or kernels.compiler_present()  # a bundle ships the kernels; a compiler builds them
        if expected and info.path != "fused":
            raise CheckFailed(f"expected the fused C++ step on the compiled kernels, got {info.detail} "
                              f"({kernels.unavailable_reason() or 'kernels loaded'})")
        return info.detail

    def html() -> str:
        preview = state["preview"] = HtmlPreview()
        preview.resize(320, 200)
        preview.show()
        preview.show_html(HTML_PAGE)
        if not preview.wait_loaded(30_000):
            raise CheckFailed("the page did not finish loading in 30 s")
        image = None
        colours: set[int] = set()
        for _ in range(50):  # the first frames after loadFinished may not be composited yet
            app.processEvents()
            image = preview.grab_image()
            colours = {image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)}
            if len(colours) >= 3:
                break
            time.sleep(0.1)
        if image is None or image.isNull() or len(colours) < 3:
            raise CheckFailed(f"the grab is blank ({len(colours)} colours)")
        red = sum(1 for x in range(0, 100, 4) for y in range(0, 60, 4) if image.pixelColor(x, y).red() > 150
                  and image.pixelColor(x, y).blue() < 100)
        if red < 50:
            raise CheckFailed(f"the red box is missing from the grab ({red} red samples)")
        return f"{image.width()}x{image.height()}, {len(colours)} colours"

    def demo_image() -> str:
        import numpy as np

        from playground.domain.image import ImageRequest
        from playground.models.demo_image import DEMO_IMAGE_ID
        from playground.runtime.image_runner import ImageRunner

        runner = ImageRunner(device="cpu", thread_name_prefix="engine-self-test")
        try:
            result = runner.generate(DEMO_IMAGE_ID, ImageRequest(prompt="a red circle", steps=4, seed=0)).result(300)
        finally:
            runner.shutdown()
        if len(result.images) != 1:
            raise CheckFailed(f"{len(result.images)} images")
        pixels = np.asarray(result.images[0].convert("RGB"), dtype=np.float32)  # (H, W, 3)
        if pixels.std() < 5:
            raise CheckFailed(f"the image is flat (std {pixels.std():.1f})")
        return f"{pixels.shape[1]}x{pixels.shape[0]}, std {pixels.std():.1f}"

    def session() -> str:
        window = state["window"]
        store, session_id = window.store, window.current_session
        runs = store.runs(session_id, "prompt")
        if not runs:
            raise CheckFailed("the completion was not saved in the session")
        answer = runs[-1].outputs
        if state.get("answer") and state["answer"] not in str(answer):
            raise CheckFailed(f"the saved run does not hold the answer: {str(answer)[:200]}")
        window.save_drafts()
        draft = store.draft(session_id)
        if draft.get("prompt", {}).get("prompt") != FEW_SHOT_PROMPT:
            raise CheckFailed(f"the draft lacks the prompt: {str(draft)[:200]}")
        return f"session {session_id}: {len(runs)} run(s) and the draft read back from {store.db.path.name}"

    def no_internal_errors() -> str:
        app.processEvents()
        if crashes.count:
            raise CheckFailed(f"{crashes.count} uncaught exception(s); see {crashes_log()}")
        return "none caught by the exception hook"

    def bundle_untouched() -> str:
        assert root is not None and before is not None
        added = sorted(_snapshot(root) - before)
        if added:
            raise CheckFailed(f"{len(added)} files written inside the bundle: {added[:5]}")
        return f"{len(before)} files, none added"

    try:
        if report.check("window", open_window):
            if report.check("completion", completion):
                report.check("engine path", engine_path)
            report.check("html", html)
            report.check("demo image", demo_image)
            report.check("session", session)
        report.check("no bug", no_internal_errors)
        if root is not None:
            report.check("bundle read-only", bundle_untouched)
    finally:
        if "preview" in state:
            state["preview"].dispose()
        if "window" in state:
            state["window"].close()  # stops the engine worker and closes the database
        app.processEvents()
        crashes.uninstall()
    print(f"playground self-test: {'FAILED (' + str(report.failures) + ')' if report.failures else 'passed'}",
          flush=True)
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ui.shell.self_test [--embedded-model FOLDER] [--keep-data]``."""
    parser = argparse.ArgumentParser(prog="playground --self-test", description=__doc__.splitlines()[0])
    parser.add_argument("--embedded-model", type=Path, help="an already converted embedded model folder to reuse")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)
    return run_self_test(args.embedded_model, args.keep_data)


if __name__ == "__main__":
    sys.exit(main())
