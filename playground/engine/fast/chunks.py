"""The chunks a prompt is always prefilled in, so that its logits depend on its tokens alone.

A matmul's rows differ in their last bits with the number of rows it is given, and sampling turns that into another
text. A prompt is therefore always computed in the same chunks: cut at every multiple of ``size`` and at the
caller's checkpoints (the end of the source text, of the earlier chat turns, of a sheet's shared prefix), and a
cached position is reused only when the chunk that computed it is the chunk a fresh prefill would run. Same seed +
same settings => same text, whether a prefix was cached or not (issue 16, item 3).
"""

from __future__ import annotations


def prefill_chunks(length: int, checkpoints: tuple[int, ...] = (), size: int = 512) -> list[tuple[int, int]]:
    """The [start, end) chunks of a ``length``-token prompt: cut at multiples of ``size`` and at each checkpoint
    inside the prompt (a function of the prompt alone)."""
    cuts = {c for c in checkpoints if 0 < c < length} | set(range(size, length, size))
    bounds = [0, *sorted(cuts), length]
    return list(zip(bounds, bounds[1:], strict=False))


def reusable(plan: list[tuple[int, int]], cached: list[tuple[int, int]], held: list[int], ids: list[int]) -> int:
    """How many of ``plan``'s chunks are already cached as computed (same bounds, same tokens); the last chunk
    always runs, its logits being the answer."""
    done = 0
    while (done < min(len(plan) - 1, len(cached)) and cached[done] == plan[done]
           and held[plan[done][0]:plan[done][1]] == ids[plan[done][0]:plan[done][1]]):
        done += 1
    return done
