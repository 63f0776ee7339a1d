"""Benchmarks and quality tables of crimelens.classify, crimelens.text and crimelens.anomaly.

Usage (from the repository root, with ../shared/datasets present)::

    python bench/classify.py quality [--sample N] [--rolling-every DAYS] [--out FILE.json]  # Toronto MCI tables
    python bench/classify.py speed   [--n 200000] [--models lightgbm,random_forest,...] [--rows mlp=100000]
    python bench/classify.py text    [--out FILE.json]               # Madison narratives

``quality`` holds out 20% of the Toronto MCI incidents twice -- at random and the latest 20% by
time -- and scores the class prior, the one-hot logistic baseline, plain LightGBM (time, place
and premises only) and the default classifier; models with place-history features are scored
twice, "frozen" (only training incidents known) and "+history" (each held-out incident also sees
the held-out incidents strictly before it, as a deployed model does); on the time hold-out the
default is also backtested as it is deployed, retrained every ``--rolling-every`` (month; each
block classified by a model trained only on incidents before it). ``speed`` times training
on ``--n`` incidents and prediction, per model, with two threads (``--rows`` gives slow learners
fewer incidents). ``text`` reports type-from-text macro-F1 of TF-IDF and embeddings on a
stratified hold-out, redaction recall/precision on the hand-labelled sample
(tests/text/redaction_gold.json) and narratives per second for redaction and embedding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
TORONTO = DATA / "toronto_mci" / "toronto_mci_2014_2021.csv"
MADISON = DATA / "madison_incident_reports" / "Police_Incident_Reports.csv"
GOLD = ROOT / "tests" / "text" / "redaction_gold.json"
TORONTO_CATEGORIES = {
    "Assault": "assault", "Break and Enter": "burglary", "Auto Theft": "vehicle_theft",
    "Robbery": "robbery", "Theft Over": "theft",
}
TZ = "America/Toronto"


def load_toronto(nrows: int | None = None) -> pd.DataFrame:
    """Toronto MCI rows as the canonical columns the classifier reads."""
    raw = pd.read_csv(TORONTO, nrows=nrows)
    day = pd.to_datetime(raw["occurrencedate"].str[:10], format="%Y/%m/%d")
    local = (day + pd.to_timedelta(raw["occurrencehour"], unit="h")).dt.tz_localize(
        TZ, ambiguous="NaT", nonexistent="shift_forward")
    raw = raw.assign(occurred_at=local.dt.tz_convert("UTC")).dropna(subset=["occurred_at"])
    cols = ["occurrencedate", "occurrencehour", "MCI", "Lat", "Long", "premises_type"]
    key = raw[cols].astype(str).agg("|".join, axis=1)
    return pd.DataFrame({
        "source": "toronto_mci",
        "incident_id": [hashlib.sha1(f"{k}|{i}".encode()).hexdigest()[:16] for i, k in enumerate(key)],
        "occurred_at": raw["occurred_at"].to_numpy(),
        "time_precision": "hour",
        "category": raw["MCI"].map(TORONTO_CATEGORIES).to_numpy(),
        "lat": raw["Lat"].to_numpy(float),
        "lon": raw["Long"].to_numpy(float),
        "premises": raw["premises_type"].to_numpy(),
        "neighbourhood": raw["Neighbourhood"].to_numpy(),
        # the flags the store keeps in the canonical ``extra`` JSON (all 0 in this extract)
        "extra": ('{"Pub_Id": "' + raw["Pub_Id"].astype(str) + '", "Park_Id": "' + raw["Park_Id"].astype(str)
                  + '", "PS_Id": "' + raw["PS_Id"].astype(str) + '"}').to_numpy(),
    })


def quality(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.classify import IncidentClassifier, OneHotLogistic, prior_proba, score
    from crimelens.classify.selection import random_split, time_split

    df = load_toronto(args.sample)
    out: dict[str, Any] = {"n": len(df), "splits": {}}
    splits = {"random": random_split(len(df), 0.2, random_state=0), "time": time_split(df, 0.2)}
    models = {
        "plain_lightgbm": IncidentClassifier(timezone=TZ, context=False, profile=False, calibration="none",
                                             decision="argmax"),
        "context_only": IncidentClassifier(timezone=TZ, profile=False),
        "crimelens_default": IncidentClassifier(timezone=TZ),
    }
    chosen = args.models.split(",") if args.models else list(models)
    for split, (tr, te) in splits.items():
        if args.split and split != args.split:
            continue
        train, test = df.iloc[tr], df.iloc[te]
        y = test["category"].to_numpy()
        classes = np.array(sorted(train["category"].unique()), dtype=object)
        rows: dict[str, Any] = {}
        rows["prior"] = score(y, prior_proba(train["category"], classes, len(test)), classes, name="prior").to_dict()
        t0 = time.perf_counter()
        lr = OneHotLogistic(timezone=TZ).fit(train)
        rows["onehot_logistic"] = score(y, lr.predict_proba(test), lr.classes_, name="logistic").to_dict()
        rows["onehot_logistic"]["fit_s"] = round(time.perf_counter() - t0, 1)
        for name in chosen:
            t0 = time.perf_counter()
            clf = models[name].fit(train)
            fit_s = time.perf_counter() - t0
            # "frozen": only the training incidents are known (a model never updated after training);
            # "+history": each held-out incident also sees the labelled held-out incidents strictly
            # before it, as a deployed model does with the store (context and profile features only)
            protocols: dict[str, pd.DataFrame | None] = {name: None}
            if clf.features_.context_ is not None or clf.features_.profile_ is not None:
                protocols[f"{name}+history"] = test
            for row, hist in protocols.items():
                t0 = time.perf_counter()
                p = clf.predict_proba(test, history=hist)
                pred_s = time.perf_counter() - t0
                rows[row] = score(y, p, clf.classes_, y_pred=clf.decide(p), name=row).to_dict()
                rows[row]["argmax_macro_f1"] = score(y, p, clf.classes_, name=row).macro_f1
                rows[row]["fit_s"] = round(fit_s, 1)
                rows[row]["predict_s"] = round(pred_s, 1)
                rows[row]["validation"] = clf.validation_
                print(split, row, {k: rows[row][k] for k in ("log_loss", "macro_f1", "accuracy", "roc_auc_ovr")},
                      flush=True)
        if split == "time" and args.rolling_every:
            # the deployment practice: retrain every N days, each block classified by a model
            # trained only on incidents before the block (crimelens.classify.backtest)
            from crimelens.classify.backtest import rolling_backtest

            t0 = time.perf_counter()
            res = rolling_backtest(IncidentClassifier(timezone=TZ, n_jobs=2), df,
                                   test_start=test["occurred_at"].min(), every=args.rolling_every, logistic=False,
                                   progress=lambda m: print(m, flush=True))
            row = f"crimelens_default retrained every {args.rolling_every}"
            rows[row] = res.report.model.to_dict()
            rows[row]["argmax_macro_f1"] = None
            rows[row]["fit_s"] = round(time.perf_counter() - t0, 1)
            rows[row]["blocks"] = [b.to_dict() for b in res.blocks]
            print(split, row, {k: rows[row][k] for k in ("log_loss", "macro_f1", "accuracy", "roc_auc_ovr")},
                  flush=True)
        out["splits"][split] = {"n_train": len(train), "n_test": len(test), "rows": rows}
        print(pd.DataFrame({k: {m: v[m] for m in ("log_loss", "macro_f1", "accuracy", "roc_auc_ovr")}
                            for k, v in rows.items()}).T.round(4).to_string(), flush=True)
    return out


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from crimelens.classify import IncidentClassifier

    full = load_toronto()
    rows = {k: int(v) for k, v in (item.split("=") for item in args.rows.split(",") if item)}
    out: dict[str, Any] = {"threads": args.threads, "models": {}}
    for name in args.models.split(","):
        n = min(rows.get(name, args.n), len(full))
        df = full.sample(n, random_state=0).sort_values("occurred_at")
        test = df.sample(min(20_000, len(df)), random_state=1)
        clf = IncidentClassifier(model=name, timezone=TZ, n_jobs=args.threads)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        clf.fit(df)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        clf.predict_proba(test)
        pred_s = time.perf_counter() - t0
        out["models"][name] = {"n": n, "fit_s": round(fit_s, 1), "predictions_per_s": round(len(test) / pred_s),
                               "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}
        print(name, out["models"][name], flush=True)
    return out


def load_madison() -> pd.DataFrame:
    """Madison narratives with their published incident type."""
    raw = pd.read_csv(MADISON, encoding="utf-8-sig")
    return raw.dropna(subset=["Details", "IncidentType"]).reset_index(drop=True)


def text(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split

    from crimelens.text.classify import EmbeddingTextClassifier, TfidfTextClassifier
    from crimelens.text.embed import embed
    from crimelens.text.redact import Redactor, Span, score_redaction

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    m = load_madison()
    counts = m["IncidentType"].value_counts()
    keep = m[m["IncidentType"].isin(counts[counts >= args.min_count].index)]
    tr, te = train_test_split(keep, test_size=0.25, random_state=0, stratify=keep["IncidentType"])
    out: dict[str, Any] = {"types": int(keep["IncidentType"].nunique()), "n_train": len(tr), "n_test": len(te)}
    majority = tr["IncidentType"].value_counts().index[0]
    out["majority_macro_f1"] = float(f1_score(te["IncidentType"], [majority] * len(te), average="macro"))
    for name, clf in (("tfidf", TfidfTextClassifier()), ("embedding", EmbeddingTextClassifier())):
        t0 = time.perf_counter()
        clf.fit(list(tr["Details"]), tr["IncidentType"])
        pred = clf.predict(list(te["Details"]))
        out[name] = {"macro_f1": float(f1_score(te["IncidentType"], pred, average="macro")),
                     "accuracy": float((pred == te["IncidentType"].to_numpy()).mean()),
                     "seconds": round(time.perf_counter() - t0, 1)}
        print(name, out[name], flush=True)
    gold = json.loads(GOLD.read_text())
    by_id = m.set_index("IncidentID")["Details"]
    texts = [by_id[g["incident_id"]] for g in gold["narratives"]]
    red = Redactor()
    red.analyze("warm up the model")
    t0 = time.perf_counter()
    pred_spans = [red.analyze(t) for t in texts]
    red_s = time.perf_counter() - t0
    scores = score_redaction([[Span(s, e, lab) for s, e, lab in g["spans"]] for g in gold["narratives"]],
                             pred_spans)
    out["redaction"] = {"recall": scores.recall, "precision": scores.precision, "f1": scores.f1,
                        "char_recall": scores.char_recall, "char_precision": scores.char_precision,
                        "gold": scores.gold, "predicted": scores.predicted,
                        "recall_by_type": scores.recall_by_type, "gold_by_type": scores.gold_by_type}
    sample = list(m["Details"].sample(200, random_state=0))
    t0 = time.perf_counter()
    red.redact_many(sample)
    out["redaction"]["narratives_per_s"] = round(len(sample) / (time.perf_counter() - t0), 1)
    out["redaction"]["gold_narratives_per_s"] = round(len(texts) / red_s, 1)
    t0 = time.perf_counter()
    embed(sample)
    out["embedding_narratives_per_s"] = round(len(sample) / (time.perf_counter() - t0), 1)
    print(json.dumps(out["redaction"], indent=1), out["embedding_narratives_per_s"], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--sample", type=int, default=None, help="read only the first N rows")
    q.add_argument("--models", default="", help="comma-separated subset of the compared models")
    q.add_argument("--split", default="", help="random or time (default both)")
    q.add_argument("--rolling-every", default="month",
                   help="also backtest the default on the time hold-out, retrained every week, month, "
                        "quarter or N days ('': skip)")
    s = sub.add_parser("speed")
    s.add_argument("--n", type=int, default=200_000)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--models", default="lightgbm,xgboost,random_forest,linear_svm,mlp")
    s.add_argument("--rows", default="", help="fewer rows for slow learners, e.g. linear_svm=100000")
    t = sub.add_parser("text")
    t.add_argument("--min-count", type=int, default=20)
    for p in (q, s, t):
        p.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args()
    if not TORONTO.exists() and args.cmd != "text":
        sys.exit(f"dataset not found: {TORONTO}")
    result = {"quality": quality, "speed": speed, "text": text}[args.cmd](args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
