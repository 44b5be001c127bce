import numpy as np
import pytest

from tests.kws.test_detector import ToneModel, make_call
from urgence.corpus.vocabulary import KEYWORDS
from urgence.kws.detector import detect
from urgence.triage.tuning import posteriors_of, thresholds_from_posteriors, tune_for_routing


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


def test_tuning_cached_posteriors_gives_the_same_thresholds(rng):
    model = ToneModel()
    calls = [
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), ["17"]),
        (make_call([("vol", 1.0, 1.25)], 3.0, rng), []),
    ]
    speech = [make_call([("vol", 0.8, 1.05)], 2.0, rng)]
    candidates = [0.3, 0.5, 0.7, 0.9]
    direct = tune_for_routing(model, calls, speech, candidates=candidates)
    posteriors = posteriors_of(model, [samples for samples, _ in calls] + speech)
    seconds = [len(samples) / 16000 for samples, _ in calls] + [len(speech[0]) / 16000]
    cached = thresholds_from_posteriors(
        [(posteriors[i], seconds[i], needed) for i, (_, needed) in enumerate(calls)],
        [(posteriors[2], seconds[2])],
        labels=model.labels,
        candidates=candidates,
    )
    assert cached == direct and direct["vol"] > 0.3


def test_tuning_needs_calls():
    with pytest.raises(ValueError, match="at least one call"):
        tune_for_routing(ToneModel(), [])


def test_false_alarm_cost_trades_calls_for_quiet_real_speech(rng):
    # three calls need a short "vol" heard; the same short sound in real speech is then a
    # false alarm: worth it when it costs one call (counted twice: with the margin and at the
    # thresholds), not when it costs ten
    calls = [(make_call([("vol", 1.0, 1.25)], 3.0, rng), ["17"]) for _ in range(3)]
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


def test_speech_margin_keeps_thresholds_clear_of_the_tuning_speech(rng):
    # the call's "vol" (0.5 s) routes at 0.7, where the shorter one in real speech (0.35 s)
    # stays quiet, but only just: it fires at 0.55. With the margin the tuner treats that
    # as a false alarm, worth more than the one call.
    calls = [(make_call([("vol", 1.0, 1.5)], 3.0, rng), ["17"])]
    speech = [make_call([("vol", 0.8, 1.15)], 2.0, rng)]
    candidates = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.5]
    plain = tune_for_routing(ToneModel(), calls, speech, candidates=candidates, speech_margin=0)
    assert plain["vol"] == 0.7
    assert [d.service for d in detect(ToneModel(plain), calls[0][0])] == ["17"]
    assert detect(ToneModel(plain), speech[0]) == []
    assert detect(ToneModel({**plain, "vol": 0.55}), speech[0]) != []
    guarded = tune_for_routing(ToneModel(), calls, speech, candidates=candidates)
    assert guarded["vol"] == 1.5
    with pytest.raises(ValueError, match="speech_margin"):
        tune_for_routing(ToneModel(), calls, speech, speech_margin=-0.1)


def test_posteriors_are_the_same_on_two_workers(rng):
    recordings = [make_call([("gaz", 0.5, 1.0)], 2.0 + 0.5 * i, rng) for i in range(5)]
    one = posteriors_of(ToneModel(), recordings)
    two = posteriors_of(ToneModel(), recordings, workers=2)
    assert len(two) == 5
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="workers"):
        posteriors_of(ToneModel(), recordings, workers=0)


def test_a_false_alarm_the_margin_cannot_avoid_is_still_kept_below_the_thresholds(rng):
    # the real speech's "vol" (0.4 s) fires up to 0.69: with the margin (0.15) it counts at
    # every candidate, so only counting it at the thresholds themselves tells 0.5 (it fires)
    # from 0.7 and 0.8 (quiet). The short call (0.35 s) routes only at 0.5: not worth a
    # false alarm.
    calls = [
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), ["17"]),
        (make_call([("vol", 1.0, 1.35)], 3.0, rng), ["17"]),
    ]
    speech = [make_call([("vol", 0.8, 1.2)], 2.0, rng)]
    candidates = [0.5, 0.6, 0.7, 0.8]
    assert detect(ToneModel(dict.fromkeys(KEYWORDS, 0.5)), speech[0]) != []
    assert [d.service for d in detect(ToneModel(dict.fromkeys(KEYWORDS, 0.5)), calls[1][0])]
    thresholds = tune_for_routing(ToneModel(), calls, speech, candidates=candidates)
    assert thresholds["vol"] >= 0.7
    assert detect(ToneModel(thresholds), speech[0]) == []
    assert [d.service for d in detect(ToneModel(thresholds), calls[0][0])] == ["17"]


def _tuned_by_replaying_every_call(calls, speech, labels, candidates, cost, margin):
    """The coordinate ascent written plainly: every call and every recording replayed for
    every trial (the oracle of the tuner, which replays only the calls a trial can change)."""
    from urgence.kws.detector import detections_from_posteriors, keyword_columns
    from urgence.triage.router import route

    _, keywords = keyword_columns(labels)

    def fired(posteriors, seconds, thresholds):
        return detections_from_posteriors(
            posteriors, labels=labels, thresholds=thresholds, duration_s=seconds
        )

    def score(thresholds):
        right = 0
        for posteriors, seconds, needed in calls:
            service = route(fired(posteriors, seconds, thresholds)).service
            right += (service in needed) if needed else (service is None)
        lowered = {k: max(0.0, v - margin) for k, v in thresholds.items()}
        alarms = sum(
            len(fired(p, s, levels)) for p, s in speech for levels in (lowered, thresholds)
        )
        return right - cost * alarms

    shared = max(candidates, key=lambda c: (score(dict.fromkeys(keywords, c)), c))
    thresholds = dict.fromkeys(keywords, float(shared))
    best = score(thresholds)
    for _ in range(2):
        changed = False
        for keyword in keywords:
            for candidate in candidates:
                trial = {**thresholds, keyword: float(candidate)}
                if (value := score(trial)) > best:
                    best, thresholds, changed = value, trial, True
        if not changed:
            break
    return thresholds


@pytest.mark.parametrize("cost, margin", [(10.0, 0.15), (1.0, 0.0)])
def test_tuner_matches_replaying_every_call(rng, cost, margin):
    # random posteriors with keyword bumps of random heights: calls that need a service,
    # calls that need the operator, and keyword-free speech, for many keywords at once
    labels = [*KEYWORDS, "_unknown_", "_silence_"]

    def recording(bumps):
        n = int(rng.integers(20, 60))
        posteriors = rng.dirichlet(np.ones(len(labels)) * 0.3, size=n).astype(np.float32) * 0.3
        posteriors[:, -2] += 0.7
        for column in bumps:
            start = int(rng.integers(0, n - 6))
            height = rng.uniform(0.3, 1.0)
            posteriors[start : start + int(rng.integers(2, 7)), column] += height
        posteriors /= posteriors.sum(axis=1, keepdims=True)
        return posteriors, n * 0.1 + 0.9

    keywords = list(KEYWORDS)  # keyword -> service
    calls = []
    for _ in range(40):
        said = list(rng.choice(len(KEYWORDS), int(rng.integers(0, 3)), replace=False))
        misheard = list(rng.choice(len(KEYWORDS), int(rng.integers(0, 2))))
        posteriors, seconds = recording(said + misheard)
        calls.append((posteriors, seconds, sorted({KEYWORDS[keywords[c]] for c in said})))
    speech = [recording(list(rng.choice(len(KEYWORDS), 2))) for _ in range(6)]
    candidates = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    tuned = thresholds_from_posteriors(
        calls,
        speech,
        labels=labels,
        candidates=candidates,
        false_alarm_cost=cost,
        speech_margin=margin,
    )
    oracle = _tuned_by_replaying_every_call(calls, speech, labels, candidates, cost, margin)
    assert tuned == oracle
    assert len(set(tuned.values())) > 1  # the ascent moved some keywords: a real comparison
