"""The scaling rules' hot path gives what the plain definitions give: `evolve` (the copy of a state) leaves the
original alone and refuses a field that does not exist; contexts kept one byte a score match as the tuples did; a
surprise found by counting is the one found by sorting the window; the cycle of all candidate periods at once is
the cycle of each in turn; the HPA candidate's shadows of many workloads,
stepped together, decide as each workload's alone."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.scaling.behavior import BehaviorState
from aihpa.scaling.calibration import Calibration, CalibrationState, pack_context
from aihpa.scaling.evolve import evolve
from aihpa.scaling.factory import PodCpu, predictive_policy
from aihpa.scaling.policy import Observation, PredictivePolicy, PredictiveState


def test_evolve_copies_with_changes_and_leaves_the_original_alone() -> None:
    state = PredictiveState(choice=1, compared=5)
    new = evolve(state, compared=6, behavior=BehaviorState(recommendations=((0.0, 3),)))
    assert (new.choice, new.compared, new.behavior.recommendations) == (1, 6, ((0.0, 3),))
    assert (state.compared, state.behavior.recommendations) == (5, ())
    assert type(new) is PredictiveState and new.levels is state.levels  # unchanged fields are shared, not copied


def test_evolve_refuses_a_field_that_does_not_exist() -> None:
    with pytest.raises(TypeError, match="no field"):
        evolve(CalibrationState(), corection=0.5)


def test_packed_contexts_back_off_to_coarser_contexts_as_tuples_would() -> None:
    cal = Calibration(risk=0.1, min_samples=5, recent_steps=(3, 10), level_bins=(0.5, 0.9), periods=())
    contexts = [(1, 2, 2, 0, 0)] * 12 + [(1, 0, 1, 0, 0)] * 6 + [(0, 1, 0, 1, 1)] * 12
    state = CalibrationState()
    for i, ctx in enumerate(contexts):
        state = cal.update(state, realized=1.0 + i, forecast=1.0, censored=False, saturated=False, context=ctx)
    assert state.contexts.dtype == np.uint8 and state.contexts.shape == (len(contexts),)
    assert state.log_ratios.dtype == np.float16  # the window's scores in half precision (`WINDOW_DTYPE`)
    scores = state.log_ratios
    # its own context has enough scores (cal.context_min_samples == 9)
    np.testing.assert_array_equal(cal._context_scores(state, (1, 2, 2, 0, 0)), scores[:12])
    # (1, 0, 1, 0, 0) has 6: backs off to (1,) on the first feature, which the first 18 share
    np.testing.assert_array_equal(cal._context_scores(state, (1, 0, 1, 0, 0)), scores[:18])
    np.testing.assert_array_equal(cal._context_scores(state, (0, 1, 0, 1, 1)), scores[18:])
    assert len({pack_context(c) for c in contexts}) == 3


@pytest.mark.parametrize("unused", [0b0000000, 0b1100000, 0b1100110, 0b0011000])
def test_contexts_skip_no_finer_context_that_has_scores(unused: int) -> None:
    """The back-off skips a feature that no score and not the context has set (it would match as the coarser
    context): the scores it finds are those of trying every depth in turn, whichever features are in use."""
    from aihpa.scaling.calibration import _PREFIX_MASKS, CONTEXT_FEATURES

    cal = Calibration(risk=0.1, min_samples=5)  # context_min_samples == 9
    rng = np.random.default_rng(unused)
    for _ in range(40):
        codes = (rng.integers(0, 128, 60) & ~unused).astype(np.uint8)
        state = CalibrationState(log_ratios=rng.normal(0, 1, 60).astype(np.float32), contexts=codes)
        code = int(rng.choice(codes)) if rng.random() < 0.7 else int(rng.integers(0, 128)) & ~unused
        context = (code & 1, code >> 1 & 3, code >> 3 & 3, code >> 5 & 1, code >> 6 & 1)
        expected = None
        for depth in range(CONTEXT_FEATURES, 0, -1):  # the plain back-off: every depth in turn
            match = (codes & _PREFIX_MASKS[depth]) == (code & _PREFIX_MASKS[depth])
            if match.sum() >= cal.context_min_samples:
                expected = state.log_ratios[match]
                break
        found = cal._context_scores(state, context)
        assert (found is None) == (expected is None)
        if expected is not None:
            np.testing.assert_array_equal(found, expected)


def _plain_select(cal: Calibration, counts: np.ndarray, hits: np.ndarray) -> tuple[int, np.ndarray]:
    """The cycle detector's choice by its definition: each candidate period in turn, its phases' own sums."""
    best_gain, best_period, best_hot = cal.phase_min_gain, 0, np.zeros(0, dtype=np.bool_)
    offset = 0
    for period in cal.periods:
        c, h = counts[offset : offset + period], hits[offset : offset + period]
        offset += period
        total_hits, total = float(h.sum()), float(c.sum())
        if total <= 0 or total_hits < 4 * period**0.5 or float(c.min()) < 5:
            continue
        expected = c * (total_hits / total)
        hot = (h >= cal.phase_lift * expected) & (h >= expected + 3.0 * np.sqrt(expected))
        gain = float(h[hot].sum()) / total_hits - float(c[hot].sum()) / total
        if gain > best_gain + 1e-9:
            best_gain, best_period, best_hot = gain, period, hot
    return best_period, best_hot


def test_the_cycle_of_all_periods_at_once_is_the_cycle_of_each_in_turn() -> None:
    cal = Calibration()
    rng = np.random.default_rng(4)
    size, found = sum(cal.periods), 0
    for trial in range(600):
        counts = (rng.uniform(0, 60, size) * (0.01 if trial % 20 == 0 else 1.0)).astype(np.float32)
        if trial % 7 == 0:
            counts[rng.integers(size)] = rng.uniform(0, 6)  # one phase with too few scores
        lift = rng.choice([1.0, 1.0, 1.0, 6.0, 15.0], size=size) * rng.uniform(0.5, 1.5, size)
        hits = (counts * rng.uniform(0, 0.1) * lift).astype(np.float32)
        chosen = cal._select_period(CalibrationState(phase_scores=counts, phase_surprises=hits))
        period, hot = _plain_select(cal, counts, hits)
        assert chosen.period == period
        np.testing.assert_array_equal(chosen.hot, hot)
        found += period > 0
    assert 30 <= found <= 570  # both outcomes, many times


def test_a_context_wider_than_its_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="one byte"):
        Calibration(level_bins=(0.2, 0.4, 0.6, 0.8))


@pytest.mark.parametrize("n", [30, 200, 1440])
def test_a_surprise_by_count_is_a_surprise_by_the_window_s_quantiles(n: int) -> None:
    cal = Calibration(min_samples=30, periods=(15,))
    rng = np.random.default_rng(n)
    for trial in range(50):
        scores = rng.normal(0, 1, n).astype(np.float32)
        if trial % 5 == 0:
            scores = np.round(scores, 1)  # ties
        state = CalibrationState(log_ratios=scores)
        ks = [min(n, max(1, int(np.ceil(n * level)))) - 1 for level in (cal.surprise_level, cal.cycle_level)]
        part = np.sort(scores)
        for value in [float(part[ks[0]]), float(part[ks[1]]), *rng.normal(0.5, 1.5, 20).tolist()]:
            new = cal._observe_surprise(state, value, 3)
            assert (new.since_surprise == 0) == (value > float(part[ks[0]]))
            assert (new.phase_surprises[3] == 1.0) == (value > float(part[ks[1]]))


def test_policies_whose_shadows_step_together_decide_as_each_alone() -> None:
    """`PredictivePolicy.step_grids` (one pass per grid, as the controller and the backtest run them) then `decide`
    gives every workload the decision, reason and state that `decide` alone gives, over workloads with two pod sizes
    (two grids), with and without a CPU limit, saturated at times, one of them without a forecast."""
    small = predictive_policy(pod=PodCpu(request=0.5, limit=1.0), min_history=5)
    large = predictive_policy(pod=PodCpu(request=2.0, limit=None), min_history=5)
    policies = [small, large, small, large, small]
    quantiles = (0.1, 0.5, 0.9, 0.95, 0.99)
    rng = np.random.default_rng(3)
    alone = [PredictiveState() for _ in policies]
    together = [PredictiveState() for _ in policies]
    replicas = [2, 2, 3, 1, 4]
    for t in range(400):
        observations = []
        for i, policy in enumerate(policies):
            ceiling = policy.request_per_pod * 2 if i % 2 == 0 else float("inf")
            demand = max(0.0, 1.5 + np.sin(t / 30 + i) + rng.normal(0, 0.3) + (3.0 if rng.random() < 0.03 else 0.0))
            usage = min(demand, replicas[i] * ceiling)
            observations.append(Observation(usage=usage, pods_with_metrics=replicas[i], current_replicas=replicas[i],
                                            now=60.0 * t, history_len=t, capacity_per_pod=ceiling))
        grids = PredictivePolicy.step_grids(list(zip(policies, observations, together, strict=True)))
        assert all(g is not None for g in grids)
        for i, policy in enumerate(policies):
            usage = observations[i].usage
            forecast = None if i == 4 else np.tile(usage * np.asarray([0.8, 1.0, 1.2, 1.3, 1.5]), (4, 1))
            a, alone[i] = policy.decide(observations[i], alone[i], forecast=forecast, quantiles=quantiles)
            b, together[i] = policy.decide(observations[i], together[i], forecast=forecast, quantiles=quantiles,
                                           grid_state=grids[i])
            assert (a.replicas, a.reason, a.kind) == (b.replicas, b.reason, b.kind), (t, i)
            np.testing.assert_array_equal(alone[i].grid.decisions, together[i].grid.decisions)
            assert alone[i].grid.outcomes == together[i].grid.outcomes and alone[i].choice == together[i].choice
            replicas[i] = a.replicas
    assert max(s.grid.outcomes for s in together) > 300
