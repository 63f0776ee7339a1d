"""On real Toronto MCI incidents the classifier beats both baselines on later incidents."""

from __future__ import annotations

import pandas as pd
import pytest

from crimelens.classify import IncidentClassifier, OneHotLogistic, prior_proba, score
from crimelens.classify.selection import time_split


@pytest.mark.real_data
def test_beats_baselines_on_later_toronto_incidents(toronto_sample: pd.DataFrame) -> None:
    data = toronto_sample.iloc[:25_000]
    tr, te = time_split(data, 0.25)
    train, test = data.iloc[tr], data.iloc[te]
    clf = IncidentClassifier(timezone="America/Toronto", params={"n_estimators": 300, "learning_rate": 0.1})
    clf.fit(train)
    p = clf.predict_proba(test)
    y = test["category"]
    ours = score(y, p, clf.classes_, y_pred=clf.decide(p))
    prior = score(y, prior_proba(train["category"], clf.classes_, len(test)), clf.classes_)
    lr = OneHotLogistic(timezone="America/Toronto").fit(train)
    logistic = score(y, lr.predict_proba(test), lr.classes_)
    assert ours.log_loss < logistic.log_loss < prior.log_loss
    assert ours.macro_f1 > logistic.macro_f1
