"""LIME explanations of a text classifier's prediction for one narrative.

LIME [1]_ explains one prediction by perturbing the input -- here, removing random subsets of
the narrative's words -- asking the classifier about each perturbed text, and fitting a
sparse linear model, weighted by closeness to the original, to those answers. The linear
model's word weights say which words pushed the prediction towards (positive) or away from
(negative) the explained type. It works for any classifier with ``predict_proba`` over texts
(TF-IDF or embeddings alike).

Optional extra: ``pip install 'crimelens[nlp]'`` (the ``lime`` package).

References
----------
.. [1] M. T. Ribeiro, S. Singh and C. Guestrin, "'Why should I trust you?': explaining the
   predictions of any classifier", KDD 2016.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.exceptions import InputError, require_extra
from crimelens.text.nlp import clean_text


class TextProbabilistic(Protocol):
    """A fitted text classifier."""

    classes_: npt.NDArray[Any]

    def predict_proba(self, texts: Any) -> npt.NDArray[np.float64]:
        """Probabilities per class."""
        ...


def explain_text(
    clf: TextProbabilistic,
    text: str,
    *,
    label: str | None = None,
    num_features: int = 10,
    num_samples: int = 500,
    random_state: int = 0,
) -> pd.DataFrame:
    """Word weights for the prediction of ``label`` (default: the predicted type) on ``text``.

    Returns a table ``word, weight`` sorted by absolute weight, with the explained ``label``,
    its predicted probability and the local model's fit (``score``) in ``attrs``.
    """
    require_extra("lime", "nlp")
    from lime.lime_text import LimeTextExplainer

    classes = [str(c) for c in clf.classes_]
    doc = clean_text(text)
    if not doc.split():
        raise InputError("nothing to explain: the narrative is empty")
    proba = clf.predict_proba([doc])[0]
    k = int(np.argmax(proba)) if label is None else classes.index(label) if label in classes else -1
    if k < 0:
        raise InputError(f"unknown type {label!r}")
    explainer = LimeTextExplainer(class_names=classes, random_state=random_state, bow=True)
    exp = explainer.explain_instance(
        doc, lambda batch: clf.predict_proba(list(batch)), labels=(k,),
        num_features=num_features, num_samples=num_samples,
    )
    table = pd.DataFrame(exp.as_list(label=k), columns=["word", "weight"])
    table = table.reindex(table["weight"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    table.attrs.update({"label": classes[k], "probability": float(proba[k]), "score": float(exp.score)})
    return table
