import pytest

from tests.kws.test_detector import ToneModel, make_call
from urgence.corpus.vocabulary import KEYWORDS
from urgence.kws.detector import detect
from urgence.triage.tuning import tune_for_routing


def test_thresholds_route_the_calls_and_keep_real_speech_quiet(rng):
    # the stub hears "vol" wherever its tone sounds: the real, long "vol" words must still
    # route to 17, while the short sound-alike in a quiet call and in real speech must not
    calls = [
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), ["17"]),
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), ["17"]),
        (make_call([("vol", 1.0, 1.25)], 3.0, rng), []),
    ]
    speech = [make_call([("vol", 0.8, 1.05)], 2.0, rng)]
    thresholds = tune_for_routing(ToneModel(), calls, speech, candidates=[0.3, 0.5, 0.7, 0.9])
    assert set(thresholds) == set(KEYWORDS)
    assert detect(ToneModel({**thresholds, "vol": 0.3}), calls[2][0]) != []  # fires at 0.3
    tuned = ToneModel(thresholds)
    assert [d.service for d in detect(tuned, calls[0][0])] == ["17"]
    assert detect(tuned, calls[2][0]) == [] and detect(tuned, speech[0]) == []


def test_keywords_absent_from_the_calls_keep_the_shared_threshold(rng):
    calls = [(make_call([("incendie", 1.0, 1.7)], 3.0, rng), ["18"])]
    thresholds = tune_for_routing(ToneModel(), calls, candidates=[0.3, 0.6, 0.9, 1.5])
    # one shared threshold (the highest that routes the call: 1.5 never fires), unchanged
    # by the ascent since no other keyword changes any routing
    assert len(set(thresholds.values())) == 1 and thresholds["gaz"] < 1.5
    assert [d.service for d in detect(ToneModel(thresholds), calls[0][0])] == ["18"]


def test_tuning_needs_calls():
    with pytest.raises(ValueError, match="at least one call"):
        tune_for_routing(ToneModel(), [])


def test_false_alarm_cost_trades_calls_for_quiet_real_speech(rng):
    # two calls need a short "vol" heard; the same short sound in real speech is then a
    # false alarm: worth it when it costs one call, not when it costs ten
    calls = [(make_call([("vol", 1.0, 1.25)], 3.0, rng), ["17"]) for _ in range(2)]
    speech = [make_call([("vol", 0.8, 1.05)], 2.0, rng)]
    candidates = [0.3, 0.5, 0.7, 0.9, 1.5]
    cheap = tune_for_routing(
        ToneModel(), calls, speech, candidates=candidates, false_alarm_cost=1.0
    )
    dear = tune_for_routing(
        ToneModel(), calls, speech, candidates=candidates, false_alarm_cost=10.0
    )
    assert [d.service for d in detect(ToneModel(cheap), calls[0][0])] == ["17"]
    assert detect(ToneModel(cheap), speech[0]) != []
    assert detect(ToneModel(dear), speech[0]) == []
