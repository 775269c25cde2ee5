"""Assemble streamed tokens into text, holding back what might turn out to be a stop sequence.

Token texts always concatenate to the completion text: a token whose bytes end mid-character gets "" and
the next one carries the whole character; a stop sequence is cut out of the tokens that spelled it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PendingToken:
    token_id: int
    logprob: float | None  # None: a remote server sent none
    top: tuple
    start: int  # character offset of this token's text in the completion
    end: int


@dataclass
class StopAssembler:
    stops: tuple[str, ...]
    text: str = ""
    emitted_chars: int = 0
    stopped: bool = False
    pending: list[PendingToken] = field(default_factory=list)

    def push(self, new_text: str, token_id: int, logprob: float | None, top: tuple) -> list[tuple[PendingToken, str]]:
        """Add one token's text; return the tokens now safe to emit, each with its (possibly cut) text."""
        if self.stopped:
            return []
        start = len(self.text)
        self.text += new_text
        self.pending.append(PendingToken(token_id, logprob, top, start, len(self.text)))
        cut = self._find_stop()
        if cut is not None:
            self.stopped = True
            self.text = self.text[:cut]
            return self._release(cut)
        return self._release(len(self.text) - self._held_suffix())

    def flush(self) -> list[tuple[PendingToken, str]]:
        """Release everything (the run ended without completing a stop sequence)."""
        return self._release(len(self.text), final=True)

    def _find_stop(self) -> int | None:
        longest = max((len(s) for s in self.stops), default=0)
        window_start = max(0, self.emitted_chars - longest)
        hits = [i for s in self.stops if (i := self.text.find(s, window_start)) >= 0]
        return min(hits) if hits else None

    def _held_suffix(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of some stop sequence."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:n]):
                    best = n
                    break
        return best

    def _release(self, safe_end: int, final: bool = False) -> list[tuple[PendingToken, str]]:
        out: list[tuple[PendingToken, str]] = []
        while self.pending:
            tok = self.pending[0]
            if self.stopped:
                if tok.start < safe_end:
                    out.append((tok, self.text[tok.start:min(tok.end, safe_end)]))
            elif final or tok.end <= safe_end:
                out.append((tok, self.text[tok.start:tok.end]))
            else:
                break  # this token reaches into a held-back tail: it and all after it wait
            self.pending.pop(0)
        if out:
            self.emitted_chars = out[-1][0].start + len(out[-1][1])
        return out
