"""Text classifiers, topics, keywords, sentiment and LIME on small synthetic narratives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from crimelens.exceptions import NotFittedError
from crimelens.text.nlp import clean_text
from tests.text.conftest import HAS_NLP, needs_deep, needs_nlp

TEMPLATES = {
    "burglary": ["someone broke into the house through a rear window and stole a laptop",
                 "the garage door was forced open overnight and tools were taken",
                 "a resident found the back door kicked in and jewelry missing"],
    "robbery": ["a man showed a handgun to the clerk and demanded cash from the register",
                "two suspects robbed a pedestrian at gunpoint and took his phone",
                "the victim was punched and his wallet was taken by force"],
    "traffic": ["a driver ran a red light and crashed into another vehicle at the intersection",
                "the car rolled over after hitting a snow bank and the motorist was hurt",
                "a hit and run driver struck a parked car and fled"],
}


def corpus(n_per: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    fillers = ["officers responded", "on the east side", "late in the evening", "the investigation continues"]
    texts, labels = [], []
    for label, temps in TEMPLATES.items():
        for _ in range(n_per):
            parts = [temps[rng.integers(len(temps))], fillers[rng.integers(len(fillers))]]
            texts.append(f"<p>{' '.join(parts).capitalize()}.</p>&nbsp;")
            labels.append(label)
    return texts, labels


def test_clean_text() -> None:
    assert clean_text("A<br />\n&nbsp;B&amp;C") == "A\nB&C"
    assert clean_text(None) == ""


@needs_nlp
def test_preprocess_lemmatises_and_drops_stop_words() -> None:
    from crimelens.text.nlp import preprocess

    out = preprocess(["The officers were arresting two men.", None])
    assert out[0].split() == ["officer", "arrest", "man"]
    assert out[1] == ""


@pytest.mark.parametrize("lemmatize", [False, pytest.param(True, marks=needs_nlp)])
def test_tfidf_classifier(lemmatize: bool) -> None:
    from crimelens.text.classify import TfidfTextClassifier

    texts, labels = corpus()
    clf = TfidfTextClassifier(lemmatize=lemmatize, min_df=1)
    with pytest.raises(NotFittedError):
        clf.predict(texts[:2])
    assert clone(clf).get_params() == clf.get_params()
    clf.fit(texts[::2], labels[::2])
    acc = float(np.mean(clf.predict(texts[1::2]) == np.array(labels[1::2])))
    assert acc > 0.9
    top = clf.top_terms(5)
    assert set(top) == set(TEMPLATES)
    p = clf.predict_proba(["stole a laptop from the house"])
    assert clf.classes_[p.argmax()] == "burglary"


@needs_deep
def test_embedding_classifier() -> None:
    from crimelens.text.classify import EmbeddingTextClassifier
    from crimelens.text.embed import embed

    texts, labels = corpus(12)
    e = embed([*texts[:3], ""])
    assert e.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(e[:3], axis=1), 1.0, atol=1e-5)
    clf = EmbeddingTextClassifier().fit(texts[::2], labels[::2])
    acc = float(np.mean(clf.predict(texts[1::2]) == np.array(labels[1::2])))
    assert acc > 0.8


THEMES = {
    "burglary": "burglary house window door garage forced entry stolen laptop jewelry",
    "robbery": "robbery handgun clerk register cash gunpoint wallet demanded masked pistol",
    "traffic": "crash driver vehicle intersection collision motorist rollover license speed lane",
}


@pytest.mark.parametrize("lemmatize", [False, pytest.param(True, marks=needs_nlp)])
def test_topics_recover_planted_themes(lemmatize: bool) -> None:
    from crimelens.text.topics import TopicModel, keywords

    rng = np.random.default_rng(2)
    texts, labels = [], []
    for label, words in THEMES.items():
        for _ in range(40):
            texts.append(" ".join(rng.choice(words.split(), 7)) + " officers responded")
            labels.append(label)
    tm = TopicModel(n_topics=3, lemmatize=lemmatize, min_df=2).fit(texts)
    table = tm.top_terms(6)
    assert len(table) == 3 and table["share"].sum() == pytest.approx(1.0)
    dom = tm.dominant(texts)
    # each planted theme maps mostly to one topic
    for label in TEMPLATES:
        mine = dom[np.array(labels) == label]
        assert np.bincount(mine).max() / len(mine) > 0.8
    kw = keywords(texts[:3], top_n=3, lemmatize=lemmatize)
    assert len(kw) == 3 and all(len(k) <= 3 for k in kw)


@pytest.mark.skipif(not HAS_NLP, reason="nlp extra missing: pip install 'crimelens[nlp]'")
def test_sentiment_and_lime() -> None:
    pytest.importorskip("vaderSentiment", reason="nlp extra missing (vaderSentiment)")
    pytest.importorskip("lime", reason="nlp extra missing (lime)")
    from crimelens.text.classify import TfidfTextClassifier
    from crimelens.text.lime_explain import explain_text
    from crimelens.text.sentiment import sentiment

    s = sentiment(["Great news: the missing child was found safe and happy.",
                   "A horrific, brutal attack left the victim badly injured.", None])
    assert s["label"].tolist() == ["positive", "negative", "neutral"]
    texts, labels = corpus()
    clf = TfidfTextClassifier(lemmatize=False, min_df=1).fit(texts, labels)
    table = explain_text(clf, "a man showed a handgun to the clerk and demanded cash", num_samples=200)
    assert table.attrs["label"] == "robbery"
    top_words = set(table.head(4)["word"])
    assert top_words & {"handgun", "clerk", "demanded", "cash", "showed"}
