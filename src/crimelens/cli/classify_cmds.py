"""``crimelens classify ...``, ``crimelens text ...`` and ``crimelens anomalies``.

Each command parses options, reads incidents from the store (read-only), calls the core
(:mod:`crimelens.classify`, :mod:`crimelens.text`, :mod:`crimelens.anomaly`) and prints the
result as text or, with ``--json``, as one JSON object on stdout.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    make_filter,
)
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter

if TYPE_CHECKING:
    from crimelens.classify import IncidentClassifier

ModelOpt = Annotated[Path, typer.Option("--model", help="Model file written by 'classify train'.")]
TzOpt = Annotated[str | None, typer.Option("--timezone", help="IANA zone of wall-clock features.")]
TargetOpt = Annotated[str, typer.Option("--target", help="Label column: category or offense.")]
LearnerOpt = Annotated[str, typer.Option("--model", help="lightgbm, xgboost, random_forest, linear_svm, mlp.")]


def _progress(msg: str) -> None:
    typer.echo(msg, err=True)


def read_incidents(db: str | None, flt: IncidentFilter, *, personal: bool = False) -> pd.DataFrame:
    """Incidents from the store at ``db`` (opened read-only), or fail when there are none.

    The store's time zone for these sources is kept in ``frame.attrs["timezone"]``.
    """
    from crimelens.store import connect

    store = connect(db_url(db), read_only=True)
    try:
        frame = store.incidents(flt, include_personal=personal)
        tz = store.timezone(flt.sources) if hasattr(store, "timezone") else "UTC"
    finally:
        store.close()
    if frame.empty:
        fail("no incidents match (check --db and the filters)")
    frame.attrs["timezone"] = tz
    return frame


def _flt(start: str | None, end: str | None, cats: list[str] | None, sources: list[str] | None) -> IncidentFilter:
    return make_filter(start, end, cats, sources)


def _labelled(
    db: str | None, flt: IncidentFilter, model: str, timezone: str | None, target: str
) -> tuple[pd.DataFrame, IncidentClassifier]:
    """The store's incidents and an unfitted classifier for them (time zone defaults to the store's)."""
    from crimelens.classify import IncidentClassifier

    incidents = read_incidents(db, flt)
    clf = IncidentClassifier(model=model, timezone=timezone or incidents.attrs.get("timezone"), target=target)
    return incidents, clf


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.4f}")


# -- classify ---------------------------------------------------------------------------
classify_app = typer.Typer(help="Crime-type classification: train, evaluate, predict, explain.",
                           no_args_is_help=True)


@classify_app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Model file to write.")],
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, category: CategoryOpt = None,
    source: SourceOpt = None, timezone: TzOpt = None, target: TargetOpt = "category",
    model: LearnerOpt = "lightgbm",
    search: Annotated[float, typer.Option("--search", help="Seconds of hyperparameter search (0: none).")] = 0.0,
    select: Annotated[bool, typer.Option("--select-features", help="Keep feature groups that help.")] = False,
    registry: Annotated[Path | None, typer.Option("--registry", help="Also register the model as a candidate "
                                                  "in this model registry (docs/operations.md).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a classifier on the store's incidents and save it with its metadata."""
    from crimelens.classify import OneHotLogistic
    from crimelens.classify.persistence import model_metadata, save_model
    from crimelens.classify.selection import select_features, successive_halving

    with errors_to_exit():
        incidents, clf = _labelled(db, _flt(start, end, category, source), model, timezone, target)
        extra: dict[str, Any] = {}
        if select:
            _progress("selecting features (permutation importance on the latest 20%)...")
            sel = select_features(clf, incidents)
            clf.set_params(features=sel.selected)
            extra["feature_selection"] = sel.importance.to_dict(orient="records")
        if search > 0:
            _progress(f"searching hyperparameters for up to {search:.0f} s...")
            res = successive_halving(clf, incidents, time_budget_s=search)
            clf.set_params(params=res.best_params)
            extra["search"] = {"best": res.best_params, "trials": len(res.trials)}
        _progress(f"training {model} on {len(incidents):,} incidents...")
        clf.fit(incidents)
        baseline = OneHotLogistic(timezone=clf.timezone, target=target).fit(incidents)
        meta = model_metadata(clf, incidents, **extra)
        save_model(clf, out, meta, baseline=baseline)
        version = None
        if registry is not None:
            from crimelens.registry import ModelRegistry
            from crimelens.registry.fitted import register_classifier

            scores = {k: float(v) for k, v in meta["validation"].items()
                      if isinstance(v, int | float) and not isinstance(v, bool)}
            m = register_classifier(ModelRegistry(registry), out, meta, metrics=scores,
                                    reason="crimelens classify train")
            version = f"{m.name}@{m.version}"
    summary = {"model": str(out), "n_train": meta["n_train"], "classes": meta["classes"],
               "validation": meta["validation"], "model_version": version}
    emit(summary, as_json, f"saved {out} ({meta['n_train']:,} incidents, {len(meta['classes'])} classes)")


@classify_app.command("evaluate")
def evaluate_cmd(
    model: ModelOpt, db: DbOpt = None, start: FromOpt = None, end: ToOpt = None,
    category: CategoryOpt = None, source: SourceOpt = None,
    history: Annotated[bool, typer.Option(
        "--history/--no-history",
        help="Let place-history features use this store's own earlier incidents.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score a saved model on (another store's) incidents, beside the prior and the logistic."""
    from crimelens.classify import prior_proba, score
    from crimelens.classify.metrics import EvaluationReport, align_proba
    from crimelens.classify.persistence import load_model

    with errors_to_exit():
        saved = load_model(model)
        clf = saved.estimator
        incidents = read_incidents(db, _flt(start, end, category, source))
        labels = incidents[clf.target].astype(str)
        known = labels.isin(clf.classes_)
        test = incidents[known]
        if test.empty:
            raise InputError("none of the incidents has a category the model knows")
        y = test[clf.target].astype(str).to_numpy()
        p = clf.predict_proba(test, history=incidents if history else None)
        counts = saved.metadata.get("class_counts", {})
        prior_labels = np.repeat(list(counts), list(counts.values())) if counts else y
        report = EvaluationReport(
            classes=[str(c) for c in clf.classes_],
            model=score(y, p, clf.classes_, y_pred=clf.decide(p), name="model"),
            prior=score(y, prior_proba(prior_labels, clf.classes_, len(y)), clf.classes_, name="prior"),
            logistic=(score(y, align_proba(saved.baseline.predict_proba(test), saved.baseline.classes_, clf.classes_),
                            clf.classes_, name="logistic") if saved.baseline is not None else None),
            split=f"store {db_url(db)}",
            notes={"skipped_unknown_category": int((~known).sum()), "history": history},
        )
    emit(report.to_dict(), as_json, _table(report.to_frame()))


@classify_app.command("backtest")
def backtest_cmd(
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, category: CategoryOpt = None,
    source: SourceOpt = None, timezone: TzOpt = None, target: TargetOpt = "category",
    model: LearnerOpt = "lightgbm",
    every: Annotated[str, typer.Option(
        "--every", help="Retrain every week, month, quarter, or this many days.")] = "month",
    test_from: Annotated[str | None, typer.Option(
        "--test-from", help="First date of the test period (default: the latest --test-fraction).")] = None,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Share of incidents tested.")] = 0.2,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin backtest: retrain on a schedule, score each block on incidents it never saw."""
    from crimelens.classify.backtest import rolling_backtest

    with errors_to_exit():
        incidents, clf = _labelled(db, _flt(start, end, category, source), model, timezone, target)
        result = rolling_backtest(clf, incidents, test_start=test_from, test_fraction=test_fraction,
                                  every=every, progress=_progress)
    text = _table(result.report.to_frame()) + "\n\n" + _table(
        result.blocks_frame()[["start", "n_train", "n_test", "log_loss", "macro_f1", "logistic_log_loss"]])
    emit(result.to_dict(), as_json, text)


@classify_app.command("predict")
def predict_cmd(
    model: ModelOpt, db: DbOpt = None, start: FromOpt = None, end: ToOpt = None,
    category: CategoryOpt = None, source: SourceOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write predictions (.csv or .parquet).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print without --out.")] = 20,
    history: Annotated[bool, typer.Option(
        "--history/--no-history",
        help="Let place-history features use this store's labelled incidents recorded strictly earlier.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Predicted category and class probabilities for each incident."""
    from crimelens.classify.persistence import load_model

    with errors_to_exit():
        clf = load_model(model).estimator
        incidents = read_incidents(db, _flt(start, end, category, source))
        p = clf.predict_proba(incidents, history=incidents if history else None)
        table = pd.DataFrame(p, columns=[f"p_{c}" for c in clf.classes_]).round(4)
        table.insert(0, "predicted", clf.decide(p))
        table.insert(0, "incident_id", incidents["incident_id"].to_numpy())
        if out is not None:
            table.to_parquet(out, index=False) if out.suffix == ".parquet" else table.to_csv(out, index=False)
    payload = {"n": len(table), "out": str(out) if out else None, "history": history,
               "rows": table.head(limit).to_dict(orient="records") if out is None else []}
    emit(payload, as_json, f"wrote {len(table):,} predictions to {out}" if out else table.head(limit).to_string())


@classify_app.command("explain")
def explain_cmd(
    model: ModelOpt,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for tables and PNGs.")] = Path("explain"),
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, category: CategoryOpt = None,
    source: SourceOpt = None,
    incident: Annotated[list[str] | None, typer.Option("--incident", help="incident_id to explain.")] = None,
    feature: Annotated[list[str] | None, typer.Option("--feature", help="Partial dependence of.")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Incidents for global SHAP.")] = 2000,
    as_json: JsonOpt = False,
) -> None:
    """SHAP importance, per-incident contributions and partial dependence (CSV + PNG)."""
    from crimelens.classify import explain as ex
    from crimelens.classify.persistence import load_model

    with errors_to_exit():
        clf = load_model(model).estimator
        incidents = read_incidents(db, _flt(start, end, category, source))
        out_dir.mkdir(parents=True, exist_ok=True)
        expl = ex.explain(clf, incidents, max_rows=sample)
        glob = expl.global_importance(grouped=True)
        glob.to_csv(out_dir / "shap_importance.csv")
        files = [str(out_dir / "shap_importance.csv"), str(ex.plot_importance(expl, out_dir / "shap_importance.png"))]
        chosen = incidents[incidents["incident_id"].isin(incident or [])]
        if incident and chosen.empty:
            raise InputError("none of the --incident ids is in the store")
        if not chosen.empty:
            one = ex.explain(clf, chosen, max_rows=None)
            for i, iid in enumerate(chosen["incident_id"]):
                one.contributions(i).to_csv(out_dir / f"incident_{iid}.csv", index=False)
                files += [str(out_dir / f"incident_{iid}.csv"),
                          str(ex.plot_contributions(one, i, out_dir / f"incident_{iid}.png"))]
        for f in feature or []:
            pdp = ex.partial_dependence(clf, incidents, f)
            pdp.to_csv(out_dir / f"pdp_{f}.csv", index=False)
            files += [str(out_dir / f"pdp_{f}.csv"), str(ex.plot_partial_dependence(pdp, out_dir / f"pdp_{f}.png"))]
    top = glob.head(15)["overall"].round(4).to_dict()
    human = _table(glob.head(15)) + f"\n\nwrote {len(files)} files to {out_dir}"
    emit({"files": files, "top_groups": top}, as_json, human)


# -- text --------------------------------------------------------------------------------
text_app = typer.Typer(help="Narratives: type from text, topics, personal-data redaction.", no_args_is_help=True)


def _narratives(db: str | None, flt: IncidentFilter) -> pd.DataFrame:
    frame = read_incidents(db, replace(flt, include_non_crime=True), personal=True)
    if "narrative" not in frame:
        fail("the store returned no narrative column")
    frame = frame[frame["narrative"].fillna("").str.strip() != ""]
    if frame.empty:
        fail("no incident has a narrative")
    return frame


@text_app.command("classify")
def text_classify_cmd(
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, source: SourceOpt = None,
    target: TargetOpt = "offense",
    method: Annotated[str, typer.Option("--method", help="tfidf or embedding.")] = "tfidf",
    min_count: Annotated[int, typer.Option("--min-count", help="Types with fewer narratives are left out.")] = 20,
    explain_n: Annotated[int, typer.Option("--explain", help="LIME explanations of N test narratives.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Held-out macro-F1 of predicting the incident type from its narrative."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    from crimelens.text.classify import EmbeddingTextClassifier, TfidfTextClassifier

    with errors_to_exit():
        frame = _narratives(db, _flt(start, end, None, source))
        counts = frame[target].value_counts()
        frame = frame[frame[target].isin(counts[counts >= min_count].index)]
        if frame[target].nunique() < 2:
            raise InputError(f"fewer than two types with at least {min_count} narratives")
        tr, te = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[target])
        clf = {"tfidf": TfidfTextClassifier, "embedding": EmbeddingTextClassifier}.get(method)
        if clf is None:
            raise InputError("--method must be tfidf or embedding")
        _progress(f"training {method} on {len(tr):,} narratives...")
        model = clf().fit(list(tr["narrative"]), tr[target])
        pred = model.predict(list(te["narrative"]))
        payload: dict[str, Any] = {
            "method": method, "types": int(frame[target].nunique()), "n_train": len(tr), "n_test": len(te),
            "macro_f1": float(f1_score(te[target], pred, average="macro")),
            "accuracy": float(accuracy_score(te[target], pred)), "explanations": [],
        }
        if explain_n:
            from crimelens.text.lime_explain import explain_text

            for iid, txt in zip(te["incident_id"].head(explain_n), te["narrative"].head(explain_n), strict=True):
                table = explain_text(model, txt, num_samples=300)
                payload["explanations"].append({"incident_id": iid, "label": table.attrs["label"],
                                                "words": table.to_dict(orient="records")})
    emit(payload, as_json, f"{method}: macro-F1 {payload['macro_f1']:.3f}, accuracy {payload['accuracy']:.3f} "
                           f"on {payload['n_test']} held-out narratives, {payload['types']} types")


@text_app.command("topics")
def text_topics_cmd(
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, source: SourceOpt = None,
    topics: Annotated[int, typer.Option("--topics", help="Number of topics.")] = 10,
    terms: Annotated[int, typer.Option("--terms", help="Top terms per topic.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """NMF topics of the narratives with their top terms."""
    from crimelens.text.topics import TopicModel

    with errors_to_exit():
        frame = _narratives(db, _flt(start, end, None, source))
        table = TopicModel(n_topics=topics).fit(list(frame["narrative"])).top_terms(terms)
    rows = table.to_dict(orient="records")
    human = "\n".join(f"{r['topic']:>3} {r['share']:6.1%}  {', '.join(r['terms'])}" for r in rows)
    emit(rows, as_json, human)


@text_app.command("redact")
def text_redact_cmd(
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, source: SourceOpt = None,
    text: Annotated[str | None, typer.Option("--text", help="Redact this text instead of the store's.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write incident_id, redacted text (.csv/.parquet).")]
    = None,
    limit: Annotated[int, typer.Option("--limit", help="Narratives to print without --out.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Replace names, addresses, phones, e-mails, plates and dates of birth (offline)."""
    from crimelens.text.redact import Redactor

    with errors_to_exit():
        red = Redactor()
        if text is not None:
            r = red.redact(text)
            emit({"text": r.text, "spans": [vars_(s) for s in r.spans]}, as_json, r.text)
            return
        frame = _narratives(db, _flt(start, end, None, source))
        if out is None:
            frame = frame.head(limit)
        _progress(f"redacting {len(frame):,} narratives...")
        results = red.redact_many(list(frame["narrative"]))
        table = pd.DataFrame({"incident_id": frame["incident_id"].to_numpy(),
                              "redacted": [r.text for r in results],
                              "spans": [len(r.spans) for r in results]})
        if out is not None:
            table.to_parquet(out, index=False) if out.suffix == ".parquet" else table.to_csv(out, index=False)
    payload = {"n": len(table), "spans": int(table["spans"].sum()), "out": str(out) if out else None,
               "rows": [] if out else table.to_dict(orient="records")}
    emit(payload, as_json, f"wrote {len(table):,} redacted narratives to {out}" if out else
         "\n\n".join(f"[{r.incident_id}] {r.redacted}" for r in table.itertuples()))


def vars_(span: Any) -> dict[str, Any]:
    """A span as a JSON-ready dict."""
    return {"start": span.start, "end": span.end, "entity": span.entity, "score": round(span.score, 3)}


# -- anomalies ---------------------------------------------------------------------------
def anomalies_cmd(
    db: DbOpt = None, start: FromOpt = None, end: ToOpt = None, category: CategoryOpt = None,
    source: SourceOpt = None, timezone: TzOpt = None,
    contamination: Annotated[float, typer.Option("--contamination", help="Share flagged.")] = 0.01,
    top: Annotated[int, typer.Option("--top", help="Most unusual incidents to show.")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Write all scores (.csv/.parquet).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Flag unusual incidents (Isolation Forest) with the reasons each stands out."""
    from crimelens.anomaly import IncidentAnomalyDetector

    with errors_to_exit():
        if not 0 < contamination < 0.5:
            raise InputError("--contamination must be between 0 and 0.5")
        incidents = read_incidents(db, _flt(start, end, category, source))
        det = IncidentAnomalyDetector(timezone=timezone or incidents.attrs.get("timezone"),
                                      contamination=contamination)
        res = det.fit_score(incidents)
        frame = res.to_frame()
        if out is not None:
            frame.to_parquet(out, index=False) if out.suffix == ".parquet" else frame.to_csv(out, index=False)
        head = res.top(top)
    cols = [c for c in ("incident_id", "occurred_at", "category", "premises", "score", "reasons") if c in head]
    payload = {"n": len(frame), "flagged": int(frame["is_anomaly"].sum()), "out": str(out) if out else None,
               "top": head[cols].assign(score=head["score"].round(4)).to_dict(orient="records")}
    emit(payload, as_json, head[cols].to_string(index=False))


def register(app: typer.Typer) -> None:
    """Add ``classify``, ``text`` and ``anomalies`` to the application."""
    app.add_typer(classify_app, name="classify")
    app.add_typer(text_app, name="text")
    app.command("anomalies")(anomalies_cmd)
