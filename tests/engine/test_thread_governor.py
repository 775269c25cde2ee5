"""The thread governor: decode gives a core back while another program keeps it busy, and takes it again after."""

from __future__ import annotations

from playground.threads import Governor


class Machine:
    """A fake 2-core machine: our process and a competitor each use some cores over time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = 0.0  # machine-wide busy CPU seconds
        self.ours = 0.0
        self.threads = 2
        self.sets: list[int] = []

    def run(self, seconds: float, ours: float, others: float) -> None:
        self.now += seconds
        self.ours += ours * seconds
        self.busy += (ours + others) * seconds

    def governor(self) -> Governor:
        def set_threads(n: int) -> None:
            self.threads = n
            self.sets.append(n)

        return Governor(2, set_threads, lambda: self.threads, cores=2, period=0.25,
                        stat=lambda: (self.busy, self.now * 2), own=lambda: self.ours, clock=lambda: self.now)


def decode(m: Machine, g: Governor, seconds: float, others: float) -> None:
    for _ in range(int(seconds / 0.05)):  # a step every 50 ms
        m.run(0.05, ours=float(m.threads), others=others)
        g.tick()


def test_a_busy_competitor_takes_a_thread_and_gives_it_back():
    m = Machine()
    g = m.governor()
    decode(m, g, 1.0, others=0.0)
    assert m.threads == 2 and m.sets == []  # quiet: all cores, nothing changed
    decode(m, g, 1.0, others=1.0)  # `while 1: pass` on one core
    assert m.threads == 1
    assert 0.9 < g.others < 1.1
    decode(m, g, 1.0, others=0.0)
    assert m.threads == 2
    assert m.sets == [1, 2]


def test_light_background_load_keeps_every_thread():
    m = Machine()
    g = m.governor()
    decode(m, g, 2.0, others=0.3)  # a browser tab ticking over
    assert m.threads == 2 and m.sets == []


def test_the_thread_count_is_set_again_in_a_thread_that_has_not_seen_it():
    m = Machine()
    g = m.governor()
    decode(m, g, 1.0, others=1.0)
    assert m.threads == 1
    m.threads = 2  # OpenMP keeps the count per thread: another worker thread runs the next generation
    decode(m, g, 0.5, others=1.0)
    assert m.threads == 1


def test_never_below_one_thread_or_above_the_users_count():
    m = Machine()
    g = m.governor()
    decode(m, g, 1.0, others=2.0)  # both cores taken
    assert m.threads == 1
    decode(m, g, 1.0, others=0.0)
    assert m.threads == 2  # the count torch had, not the 2 cores + a spare


def test_a_reading_across_an_idle_spell_changes_nothing():
    """Between two generations another program may have run flat out (a compile, a benchmark): the first step of
    the next generation must not drop a thread for it, only readings taken while decoding count."""
    m = Machine()
    g = m.governor()
    decode(m, g, 1.0, others=0.0)
    m.run(5.0, ours=0.0, others=2.0)  # we are idle; something else takes both cores, then stops
    decode(m, g, 0.2, others=0.0)
    assert m.threads == 2 and m.sets == []
