"""labelzoo.alternatives: marginals of parts and the probability of an exact answer over a model's alternatives."""

from __future__ import annotations

import pytest

from labelzoo.alternatives import Alternatives


def test_weights_are_renormalised_over_the_answers() -> None:
    alternatives = Alternatives.of([(2.0, ["a", "b"]), (1.0, ["a"]), (1.0, [])])
    assert [probability for probability, _ in alternatives.answers] == [0.5, 0.25, 0.25]
    assert alternatives.best == frozenset({"a", "b"})
    assert alternatives.marginals() == pytest.approx({"a": 0.75, "b": 0.5})


def test_the_exact_answer_is_never_more_probable_than_its_least_sure_part() -> None:
    alternatives = Alternatives.of([(0.6, ["a", "b"]), (0.3, ["a"]), (0.1, ["b", "a"])])
    marginals = alternatives.marginals()
    assert alternatives.probability_of(["b", "a"]) == pytest.approx(0.7)  # order does not matter
    assert alternatives.probability_of(["a"]) == pytest.approx(0.3)
    assert alternatives.probability_of([]) == 0.0  # every answer has something
    for shown in (["a", "b"], ["a"]):
        assert alternatives.probability_of(shown) <= min(marginals[part] for part in shown) + 1e-12


def test_nothing_found_is_an_answer_with_a_probability() -> None:
    alternatives = Alternatives.of([(0.8, []), (0.2, [(0, 4, "City")])])
    assert alternatives.best == frozenset()
    assert alternatives.probability_of([]) == pytest.approx(0.8)


def test_without_answers_or_weight_there_is_nothing_to_be_sure_of() -> None:
    for given in ([], [(0.0, ["a"])], [(0.0, []), (0.0, ["b"])]):
        alternatives = Alternatives.of(given)
        assert alternatives.answers == () and alternatives.best == frozenset()
        assert alternatives.marginals() == {} and alternatives.probability_of([]) == 0.0


def test_of_equally_probable_answers_the_first_is_best_and_sums_stay_at_most_one() -> None:
    alternatives = Alternatives.of([(1 / 3, ["x"]), (1 / 3, ["y"]), (1 / 3, ["x"])])
    assert alternatives.best == frozenset({"x"})
    assert 0.0 < alternatives.marginals()["x"] <= 1.0
    assert Alternatives.of([(0.1, ["x"])] * 10).marginals()["x"] <= 1.0
    assert Alternatives.of([(0.1, ["x"])] * 10).probability_of(["x"]) <= 1.0
