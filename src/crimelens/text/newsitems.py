"""News and press-release items through the text pipeline: crime type, topics, sentiment, place.

Feed items (RSS/Atom, :mod:`crimelens.connectors.feeds`) are short texts written for the public,
with no labelled training set to fit a classifier on, so the **crime type** comes from a lexicon:
each canonical category (:mod:`crimelens.taxonomy`) has word patterns a reporter would use
("shot", "gunfire" → ``aggravated_assault`` / ``weapons``...). An item takes the category whose
patterns match most often (ties: the more serious, earlier in :data:`LEXICON`), with
``category_score`` the share of all pattern hits that category holds, or ``unknown`` when none
matches; it is a keyword rule, not a trained model, and says so (``category_method``).
**Topics** are each item's top TF-IDF keywords against the batch (:func:`crimelens.text.topics.keywords`),
**sentiment** VADER's compound score and label (:func:`crimelens.text.sentiment.sentiment`), and
the **place** the most precise mention the city's :class:`~crimelens.text.gazetteer.Gazetteer`
resolves (block, street, area or none), with its precision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import pandas as pd

from crimelens.text.gazetteer import Gazetteer
from crimelens.text.nlp import clean_text
from crimelens.text.sentiment import sentiment
from crimelens.text.topics import keywords

#: Canonical category → word patterns in news text (most serious first: they win ties).
LEXICON: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("homicide", (r"\bhomicides?\b", r"\bmurder(?:s|ed)?\b", r"\bkilled\b", r"\bfatal(?:ly)? (?:shot|stabbed)\b",
                  r"\bmanslaughter\b")),
    ("rape", (r"\braped?\b", r"\bsexual assault\b")),
    ("robbery", (r"\brobber(?:y|ies)\b", r"\brobbed\b", r"\bcarjack(?:ing|ed|ings)?\b", r"\bmugg(?:ing|ed)\b",
                 r"\bheld up\b", r"\barmed robbery\b")),
    ("aggravated_assault", (r"\bshot\b", r"\bshooting\b", r"\bstabb(?:ed|ing)\b", r"\bwounded\b",
                            r"\baggravated (?:assault|battery)\b")),
    ("simple_assault", (r"\bassault(?:ed)?\b", r"\bbattery\b", r"\bpunched\b", r"\bfight\b")),
    ("kidnapping", (r"\bkidnapp(?:ed|ing)\b", r"\babduct(?:ed|ion)\b")),
    ("burglary", (r"\bburglar(?:y|ies|ized|s)?\b", r"\bbreak-?ins?\b", r"\bbroke into\b")),
    ("vehicle_theft", (r"\bstolen (?:car|vehicle|truck)s?\b", r"\bcar thefts?\b", r"\bvehicle thefts?\b",
                       r"\bauto thefts?\b")),
    ("theft_from_vehicle", (r"\bcatalytic converters?\b", r"\bsmash-and-grab\b", r"\bcar break-?ins?\b")),
    ("shoplifting", (r"\bshoplift(?:ing|ed|ers?)\b", r"\bretail theft\b")),
    ("theft", (r"\btheft\b", r"\bstole(?:n)?\b", r"\bthie(?:f|ves)\b")),
    ("arson", (r"\barson\b", r"\bset (?:a )?fire\b", r"\bfirebomb")),
    ("criminal_damage", (r"\bvandal(?:ism|ized|s)?\b", r"\bgraffiti\b", r"\bcriminal damage\b")),
    ("fraud", (r"\bfraud\b", r"\bscam(?:s|mers?)?\b", r"\bidentity theft\b", r"\bforg(?:ery|ed)\b")),
    ("drugs", (r"\bdrugs?\b", r"\bnarcotics?\b", r"\bfentanyl\b", r"\bcocaine\b", r"\bheroin\b")),
    ("weapons", (r"\bgunfire\b", r"\bshots fired\b", r"\bfirearms?\b", r"\bguns?\b", r"\bweapons? charges?\b")),
    ("dui", (r"\bdrunk driv(?:ing|er)\b", r"\bDUI\b", r"\bimpaired driving\b")),
    ("public_order", (r"\bdisorderly\b", r"\briot(?:s|ing)?\b", r"\bdisturbance\b")),
)
_COMPILED: Final = tuple((cat, tuple(re.compile(p, re.IGNORECASE) for p in pats)) for cat, pats in LEXICON)
METHOD: Final = "lexicon"


def crime_type(text: str) -> tuple[str, float]:
    """``(category, score)`` of one text by the lexicon; ``("unknown", 0.0)`` when nothing matches."""
    hits = [(cat, sum(len(p.findall(text)) for p in pats)) for cat, pats in _COMPILED]
    total = sum(n for _, n in hits)
    if total == 0:
        return "unknown", 0.0
    best, n = max(hits, key=lambda h: h[1])  # max keeps the first of equals: the more serious
    return best, round(n / total, 3)


def analyse(titles: Sequence[str | None], bodies: Sequence[str | None], gazetteer: Gazetteer | None, *,
            top_topics: int = 5) -> pd.DataFrame:
    """One row per item: ``category``, ``category_score``, ``category_method``, ``topics`` (list of
    terms), ``sentiment``, ``sentiment_label``, ``place``, ``place_precision``, ``lat``, ``lon``."""
    texts = [clean_text(" . ".join(t for t in (title, body) if t)) for title, body in zip(titles, bodies, strict=True)]
    if not texts:
        return pd.DataFrame(columns=["category", "category_score", "category_method", "topics", "sentiment",
                                     "sentiment_label", "place", "place_precision", "lat", "lon"])
    types = [crime_type(t) for t in texts]
    topics = keywords(texts, top_n=top_topics, lemmatize=False)
    tone = sentiment(texts)
    places = [gazetteer.resolve(t) if gazetteer is not None else None for t in texts]
    return pd.DataFrame({
        "category": [c for c, _ in types],
        "category_score": [s for _, s in types],
        "category_method": METHOD,
        "topics": [[term for term, _ in row] for row in topics],
        "sentiment": tone["compound"].to_numpy(float),
        "sentiment_label": tone["label"].to_numpy(object),
        "place": [p.name if p else "" for p in places],
        "place_precision": [p.precision if p else "none" for p in places],
        "lat": [p.lat if p else None for p in places],
        "lon": [p.lon if p else None for p in places],
    })
