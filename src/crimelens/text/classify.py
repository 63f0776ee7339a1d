"""Incident type from narrative text: TF-IDF and sentence-embedding classifiers.

Two standard text classifiers, both scikit-learn style estimators over lists of narratives:

* :class:`TfidfTextClassifier` -- spaCy lemmas (or raw words), word uni- and bigram TF-IDF
  with sublinear term frequency, and multinomial logistic regression, the strong linear
  baseline of text classification [1]_;
* :class:`EmbeddingTextClassifier` -- each narrative encoded by the all-MiniLM-L6-v2 sentence
  transformer [2]_ (mean-pooled, normalised, 384 dimensions; long narratives are read in
  windows of about 200 words and their embeddings averaged), then logistic regression.

Both return calibrated-enough probabilities for log loss and LIME, and take
``class_weight="balanced"`` by default, since incident types are very unequal in number and
macro-F1 is the headline score.

References
----------
.. [1] S. Wang and C. D. Manning, "Baselines and bigrams: simple, good sentiment and topic
   classification", ACL 2012; T. Joachims, "Text categorization with support vector
   machines", ECML 1998.
.. [2] N. Reimers and I. Gurevych, "Sentence-BERT: sentence embeddings using siamese
   BERT-networks", EMNLP 2019; W. Wang et al., "MiniLM: deep self-attention distillation",
   NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from crimelens.exceptions import InputError, NotFittedError
from crimelens.text.nlp import clean_text, preprocess

FloatMatrix = npt.NDArray[np.float64]


class _TextEstimator:
    """Shared scikit-learn plumbing of the text classifiers."""

    _params: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in self._params}

    def set_params(self, **params: Any) -> _TextEstimator:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            if k not in self._params:
                raise InputError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def _encode(self, texts: Sequence[str | None], fit: bool) -> Any:
        raise NotImplementedError

    def fit(self, texts: Sequence[str | None], labels: npt.ArrayLike) -> _TextEstimator:
        """Learn from narratives and their incident types."""
        y = np.asarray(labels, dtype=object).astype(str)
        if len(y) != len(texts):
            raise InputError("texts and labels differ in length")
        if len(set(y)) < 2:
            raise InputError("need at least two incident types to classify")
        x = self._encode(texts, fit=True)
        self.model_ = LogisticRegression(
            C=getattr(self, "C", 1.0), class_weight=getattr(self, "class_weight", None), max_iter=1000,
        ).fit(x, y)
        self.classes_ = np.asarray(self.model_.classes_, dtype=object)
        return self

    def predict_proba(self, texts: Sequence[str | None]) -> FloatMatrix:
        """Probabilities of each type, columns in :attr:`classes_` order."""
        self._check()
        return np.asarray(self.model_.predict_proba(self._encode(list(texts), fit=False)), float)

    def predict(self, texts: Sequence[str | None]) -> npt.NDArray[np.object_]:
        """Most probable type of each narrative."""
        self._check()
        return np.asarray(self.classes_[self.predict_proba(texts).argmax(axis=1)], dtype=object)


class TfidfTextClassifier(_TextEstimator):
    """TF-IDF of (lemmatised) words and bigrams + multinomial logistic regression.

    Parameters
    ----------
    lemmatize : bool
        Preprocess with spaCy (lemmas, no stop words; needs the ``nlp`` extra); otherwise
        the cleaned raw text is tokenised by scikit-learn.
    ngram_range : tuple of int
        Word n-gram sizes.
    min_df : int
        Drop terms found in fewer narratives.
    max_features : int, optional
        Vocabulary cap (most frequent terms).
    C : float
        Inverse regularisation strength.
    class_weight : {"balanced", None}
        Reweight types inversely to their frequency.

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer
    model_ : LogisticRegression
    classes_ : ndarray of str
    """

    _params = ("lemmatize", "ngram_range", "min_df", "max_features", "C", "class_weight")

    def __init__(
        self,
        *,
        lemmatize: bool = True,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int | None = 50_000,
        C: float = 10.0,
        class_weight: str | None = "balanced",
    ) -> None:
        self.lemmatize = lemmatize
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.C = C
        self.class_weight = class_weight

    def prepare(self, texts: Sequence[str | None]) -> list[str]:
        """The text the vectoriser reads (lemmas, or cleaned raw text)."""
        return preprocess(texts) if self.lemmatize else [clean_text(t).lower() for t in texts]

    def _encode(self, texts: Sequence[str | None], fit: bool) -> Any:
        docs = self.prepare(texts)
        if fit:
            self.vectorizer_ = TfidfVectorizer(
                ngram_range=self.ngram_range, min_df=self.min_df, max_features=self.max_features,
                sublinear_tf=True, token_pattern=r"(?u)\b[a-z][a-z]+\b",
            )
            return self.vectorizer_.fit_transform(docs)
        return self.vectorizer_.transform(docs)

    def top_terms(self, n: int = 10) -> dict[str, list[tuple[str, float]]]:
        """The ``n`` terms with the largest positive weight for each type."""
        self._check()
        vocab = np.asarray(self.vectorizer_.get_feature_names_out())
        coef = np.atleast_2d(self.model_.coef_)
        if coef.shape[0] == 1:  # binary: one row for the second class
            coef = np.vstack([-coef[0], coef[0]])
        return {
            str(c): [(str(vocab[j]), float(row[j])) for j in np.argsort(row)[::-1][:n]]
            for c, row in zip(self.classes_, coef, strict=True)
        }


class EmbeddingTextClassifier(_TextEstimator):
    """Sentence embeddings (all-MiniLM-L6-v2) + multinomial logistic regression.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the logistic regression.
    class_weight : {"balanced", None}
        Reweight types inversely to their frequency.
    batch_size : int
        Encoder batch size.
    window_words : int
        Narratives longer than this are split into windows whose embeddings are averaged.

    Attributes
    ----------
    model_ : LogisticRegression
    classes_ : ndarray of str
    """

    _params = ("C", "class_weight", "batch_size", "window_words")

    def __init__(
        self,
        *,
        C: float = 10.0,
        class_weight: str | None = "balanced",
        batch_size: int = 32,
        window_words: int = 200,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.batch_size = batch_size
        self.window_words = window_words

    def _encode(self, texts: Sequence[str | None], fit: bool) -> Any:
        from crimelens.text.embed import embed

        return embed(texts, batch_size=self.batch_size, window_words=self.window_words)
