"""Compare runs as session records: every column's spec in ``inputs``, every column's result in ``outputs``."""

from __future__ import annotations

from typing import Any

from playground.store.records import Run


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def run_record(source: str, prompt: str, columns: list[dict[str, Any]], defaults: dict[str, Any],
               results: list[dict[str, Any] | None], status: str | None = None, kind: str = "text") -> Run:
    """A ``mode="compare"`` Run: enough to show the comparison again or re-run it after changing a column."""
    results = list(results)
    failed = [r for r in results if r and "error" in r]
    cancelled = any(r and r.get("finish_reason") == "cancelled" for r in results)
    if status is None:
        status = "failed" if results and len(failed) == len(results) else "cancelled" if cancelled else "done"
    models = sorted({str(c.get("model") or defaults.get("model") or "") for c in columns})
    timings = {f"column_{i + 1}": r["timings"] for i, r in enumerate(results) if r and "timings" in r}
    return Run(
        mode="compare", model_id=", ".join(models),
        params={k: _jsonable(v) for k, v in defaults.items()},
        inputs={"kind": kind, "source": source, "prompt": prompt,
                "columns": [{k: _jsonable(v) for k, v in c.items()} for c in columns]},
        outputs={"columns": results}, timings=timings, status=status,
        error=failed[0]["error"] if failed and status == "failed" else None)
