import pytest

from urgence.kws.detector import Detection
from urgence.triage.router import route


def heard(keyword, service, start, score):
    return Detection(keyword, service, start, start + 0.5, score)


def test_single_keyword_routes_to_its_service():
    triage = route([heard("incendie", "18", 2.3, 0.94)])
    assert triage.service == "18"
    assert triage.service_label == "18 Pompiers"
    assert triage.confidence == pytest.approx(0.94)
    assert [s.service for s in triage.services] == ["18"]
    assert triage.services[0].keywords == ["incendie"]


def test_two_services_are_both_listed_strongest_first():
    triage = route(
        [
            heard("brûlure", "15", 1.0, 0.7),
            heard("incendie", "18", 3.0, 0.8),
            heard("gaz", "18", 5.0, 0.6),
        ]
    )
    assert [s.service for s in triage.services] == ["18", "15"]
    assert triage.services[0].score == pytest.approx(1 - 0.2 * 0.4)  # two pieces of evidence
    assert triage.services[1].score == pytest.approx(0.7)
    assert triage.services[0].keywords == ["incendie", "gaz"]
    assert triage.confidence == triage.services[0].score


def test_repeated_evidence_raises_confidence_but_never_above_one():
    once = route([heard("vol", "17", 1.0, 0.6)]).confidence
    thrice = route([heard("vol", "17", t, 0.6) for t in (1.0, 4.0, 8.0)]).confidence
    assert once < thrice <= 1.0
    assert route([heard("vol", "17", t, 1.0) for t in (1.0, 2.0)]).confidence == 1.0


def test_tie_goes_to_the_earliest_evidence():
    triage = route([heard("agression", "17", 4.0, 0.8), heard("malaise", "15", 1.0, 0.8)])
    assert triage.service == "15"


def test_no_keyword_means_no_service():
    triage = route([])
    assert triage.service is None and triage.service_label is None
    assert triage.confidence == 0.0 and triage.services == ()
    assert triage.to_dict()["service"] is None


def test_confidence_always_in_unit_interval():
    for score in (0.0, 0.3, 0.999, 1.0):
        confidence = route([heard("gaz", "18", 1.0, score)] * 3).confidence
        assert 0.0 <= confidence <= 1.0


def test_to_dict_is_ordered_and_complete():
    d = route([heard("gaz", "18", 5.0, 0.6), heard("malaise", "15", 1.0, 0.9)]).to_dict()
    assert set(d) == {"service", "service_label", "confidence", "services", "detections"}
    assert [x["keyword"] for x in d["detections"]] == ["malaise", "gaz"]  # time order
    assert set(d["services"][0]) >= {"service", "label", "score"}
    assert set(d["detections"][0]) == {"keyword", "service", "start_s", "end_s", "score"}


def test_bad_detections_are_value_errors():
    with pytest.raises(ValueError):
        route([heard("gaz", "112", 1.0, 0.5)])
    with pytest.raises(ValueError):
        route([heard("gaz", "18", 1.0, 1.5)])
