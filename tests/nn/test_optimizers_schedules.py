"""Learning-rate schedules (urgence.nn.schedules) against hand-computed values."""

from __future__ import annotations

import pytest

from urgence.nn import schedules


def test_step_decay_halves_every_ten_steps():
    schedule = schedules.StepDecay(1.0, every=10, factor=0.5)
    assert [schedule(s) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


def test_cosine_decay_goes_from_lr_to_the_floor_and_stays():
    schedule = schedules.CosineDecay(1.0, decay_steps=10)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(5) == pytest.approx(0.5)
    assert schedule(10) == pytest.approx(0.0)
    assert schedule(20) == pytest.approx(0.0)
    floor = schedules.CosineDecay(1.0, decay_steps=10, final_fraction=0.1)
    assert floor(10) == pytest.approx(0.1)


def test_cosine_warm_up_is_linear_then_decays():
    schedule = schedules.CosineDecay(1.0, decay_steps=12, warmup_steps=2)
    assert [schedule(s) for s in (0, 1, 2)] == pytest.approx([0.5, 1.0, 1.0])
    assert schedule(7) == pytest.approx(0.5)  # halfway through the 10 decay steps


def test_config_round_trip_and_bad_settings():
    schedule = schedules.CosineDecay(0.1, decay_steps=100, warmup_steps=10)
    rebuilt = schedules.from_config(schedule.get_config())
    assert [rebuilt(s) for s in range(0, 120, 7)] == [schedule(s) for s in range(0, 120, 7)]
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.CosineDecay(0.1, decay_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="lr must be > 0"):
        schedules.StepDecay(0.0, every=1)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.from_config({"name": "Exponential", "lr": 0.1})
