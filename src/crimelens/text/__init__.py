"""Narrative text: preprocessing, type classification, topics, keywords, sentiment, LIME, redaction.

Every heavy dependency (spaCy and its model, Presidio, sentence-transformers, VADER, LIME) is
imported lazily inside the functions that need it, with an error naming the extra to install
(``crimelens[nlp]`` or ``crimelens[deep]``), so importing this package costs nothing.
"""

from crimelens.text.classify import EmbeddingTextClassifier, TfidfTextClassifier
from crimelens.text.nlp import SPACY_MODEL, clean_text, load_spacy, preprocess
from crimelens.text.redact import DEFAULT_ENTITIES, Redaction, Redactor, Span, score_redaction
from crimelens.text.topics import TopicModel, keywords

__all__ = [
    "DEFAULT_ENTITIES",
    "SPACY_MODEL",
    "EmbeddingTextClassifier",
    "Redaction",
    "Redactor",
    "Span",
    "TfidfTextClassifier",
    "TopicModel",
    "clean_text",
    "keywords",
    "load_spacy",
    "preprocess",
    "score_redaction",
]
