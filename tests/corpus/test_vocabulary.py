import pytest

from urgence.corpus.vocabulary import (
    HOMOPHONES,
    KEYWORD_FORMS,
    KEYWORDS,
    LABELS,
    SILENCE,
    SOUND_ALIKES,
    UNKNOWN,
    fold,
    is_excluded_from_unknown,
    keyword_from_name,
    keyword_of_form,
    service_of,
)


def test_labels_are_the_keywords_then_the_rejection_classes():
    assert LABELS == (*KEYWORDS, UNKNOWN, SILENCE)
    assert len(KEYWORDS) == 12
    assert service_of("incendie").label == "18 Pompiers"


def test_fold_removes_case_and_accents():
    assert fold("Hémorragie") == "hemorragie"
    assert fold("ÉLECTROCUTION") == "electrocution"
    assert fold("brûlure") == "brulure"


def test_every_keyword_is_its_own_first_form():
    assert set(KEYWORD_FORMS) == set(KEYWORDS)
    for keyword, forms in KEYWORD_FORMS.items():
        assert forms[0] == keyword


@pytest.mark.parametrize(
    ("form", "keyword"),
    [
        ("brûlures", "brûlure"),
        ("Incendies", "incendie"),
        ("violence", "violences"),
        ("vols", "vol"),
    ],
)
def test_inflections_belong_to_their_keyword(form, keyword):
    assert keyword_of_form(form) == keyword
    assert is_excluded_from_unknown(form)


def test_homophones_are_excluded_but_sound_alikes_are_not():
    assert "vole" in HOMOPHONES and is_excluded_from_unknown("vole")
    assert keyword_of_form("volet") is None
    for alikes in SOUND_ALIKES.values():
        for word in alikes:
            assert not is_excluded_from_unknown(word), word


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("hemorragie", "hémorragie"),
        ("ELECTROCUTION", "électrocution"),
        ("brulures", "brûlure"),
        ("_unknown_", UNKNOWN),
        ("_Silence_", SILENCE),
    ],
)
def test_keyword_from_name_accepts_names_without_accents(name, label):
    assert keyword_from_name(name) == label


def test_keyword_from_name_rejects_other_words():
    with pytest.raises(KeyError, match="not a keyword"):
        keyword_from_name("bonjour")
