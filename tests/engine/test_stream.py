"""Stop-sequence hold-back: nothing that might be the start of a stop is shown early."""

from playground.domain.stream import StopAssembler


def push_all(assembler, pieces):
    shown = []
    for i, piece in enumerate(pieces):
        shown.append([text for _, text in assembler.push(piece, i, 0.0, ())])
    return shown


def test_stop_split_across_tokens_is_cut_and_never_shown():
    asm = StopAssembler(stops=("END",))
    shown = push_all(asm, ["Hello ", "E", "N", "D", " more"])
    assert shown == [["Hello "], [], [], [], []]
    assert asm.stopped and asm.text == "Hello "


def test_false_start_is_released_when_it_turns_out_not_to_be_a_stop():
    asm = StopAssembler(stops=("END",))
    shown = push_all(asm, ["a", "E", "N", "x"])
    assert shown == [["a"], [], [], ["E", "N", "x"]]
    assert not asm.stopped


def test_stop_inside_one_token_keeps_the_text_before_it():
    asm = StopAssembler(stops=("\n",))
    shown = push_all(asm, [" Rome", "\nCountry"])
    assert shown == [[" Rome"], []]
    assert asm.text == " Rome"


def test_token_with_text_before_the_stop_is_cut():
    asm = StopAssembler(stops=("\n",))
    assert [t for _, t in asm.push(" Paris\n", 0, 0.0, ())] == [" Paris"]


def test_flush_releases_a_held_tail():
    asm = StopAssembler(stops=("END",))
    push_all(asm, ["ok E"])
    assert [t for _, t in asm.flush()] == ["ok E"]
