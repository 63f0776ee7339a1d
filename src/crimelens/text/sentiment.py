"""Sentiment of news-style text with VADER, a lexicon-and-rules model that ships its lexicon.

VADER [1]_ scores a text with a human-rated valence lexicon of about 7,500 words, emoticons
and slang, plus rules for negation, intensifiers ("very"), contrast ("but"), capitals and
punctuation. It needs no training data and no download (the lexicon is inside the
``vaderSentiment`` package), and it is tuned for short news and social-media text, which is
what press releases about incidents and local news coverage are. Police narratives are
deliberately neutral, so on them the scores mostly measure how violent the described events
are; on news text they measure tone.

Optional extra: ``pip install 'crimelens[nlp]'``.

References
----------
.. [1] C. J. Hutto and E. Gilbert, "VADER: a parsimonious rule-based model for sentiment
   analysis of social media text", ICWSM 2014.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pandas as pd

from crimelens.exceptions import require_extra
from crimelens.text.nlp import clean_text


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    require_extra("vaderSentiment", "nlp")
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(texts: Sequence[str | None]) -> pd.DataFrame:
    """VADER scores of each text: ``neg``, ``neu``, ``pos`` (shares) and ``compound`` (-1..1),
    plus ``label`` (negative below -0.05, positive above 0.05, else neutral, as VADER's
    authors recommend)."""
    sia = _analyzer()
    rows = [sia.polarity_scores(clean_text(t)) for t in texts]
    frame = pd.DataFrame(rows, columns=["neg", "neu", "pos", "compound"])
    frame["label"] = pd.cut(
        frame["compound"], [-1.01, -0.05, 0.05, 1.01], labels=["negative", "neutral", "positive"]
    ).astype(str)
    return frame
