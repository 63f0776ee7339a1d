"""Risk terrain modelling on real Toronto records, with environmental layers built from the data itself.

Toronto's Major Crime Indicators carry a ``premises_type`` per record. The places where *other*
offences (assault, break and enter, auto theft, theft over) were recorded in 2014-2015 at transit,
commercial, educational and house premises stand in for layers of transit stops, shops, schools and
houses: a **proxy** (a premises seen in police records, at the publisher's intersection offset), not
a real land-use layer. Robberies of 2016-2018 in a downtown box are modelled; 2019 is held out.

``python tests/drivers/test_rtm_real.py OUT`` runs the same analysis and writes its outputs to OUT
(the figures in docs/rtm.md come from it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

SHARED = Path(os.environ.get("CRIMELENS_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "datasets"
TORONTO = SHARED / "toronto_mci" / "toronto_mci_2014_2021.csv"
BOX = {"lon": (-79.42, -79.34), "lat": (43.63, 43.69)}  # downtown Toronto, about 6.5 km x 6.7 km
PROXIES = {"transit": "Transit", "commercial": "Commercial", "educational": "Educational", "house": "House"}


def build(root: Path) -> tuple[Path, list[Path]]:
    """Ingest 2016-2019 robberies of the box into a store; write the 2014-2015 premises layers."""
    from crimelens.cli.app import app

    raw = pd.read_csv(TORONTO)
    year = raw["occurrencedate"].str[:4].astype(int)
    inside = raw["Long"].between(*BOX["lon"]) & raw["Lat"].between(*BOX["lat"])
    rob = raw[inside & (raw["MCI"] == "Robbery") & year.between(2016, 2019)]
    rob.to_csv(root / "robbery.csv", index=False)
    db = root / "toronto.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(root / "robbery.csv"), "--preset", "toronto_mci", "--db", str(db)])
    assert res.exit_code == 0, res.output
    early = raw[inside & (raw["MCI"] != "Robbery") & year.between(2014, 2015)]
    layers = []
    for name, premises in PROXIES.items():
        places = early.loc[early["premises_type"] == premises, ["Long", "Lat"]].drop_duplicates()
        path = root / f"{name}.geojson"
        gpd.GeoDataFrame(geometry=gpd.points_from_xy(places["Long"], places["Lat"]), crs="EPSG:4326").to_file(
            path, driver="GeoJSON")
        layers.append(path)
    return db, layers


def run(root: Path, out: Path) -> dict:  # type: ignore[type-arg]
    """``crimelens rtm`` on the built store; the JSON payload."""
    from crimelens.cli.app import app

    db, layers = build(root)
    res = CliRunner().invoke(app, ["rtm", "--db", str(db), "--layers", ",".join(map(str, layers)),
                                   "--category", "robbery", "--cell", "100", "--test-from", "2019-01-01",
                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.stdout))


@pytest.mark.real_data
def test_toronto_robbery_terrain_from_premises_proxies(tmp_path: Path) -> None:
    if not TORONTO.exists():
        pytest.skip(f"real data not available: {TORONTO}")
    payload = run(tmp_path, tmp_path / "out")
    assert payload["test_period"].startswith("2019-01-01")
    assert payload["fit_incidents"] > 1000 and payload["test_incidents"] > 300
    factors = pd.DataFrame(payload["factors"])
    assert len(factors) >= 1 and set(factors["layer"]) <= set(PROXIES)
    assert (factors["rrv_low"] <= factors["rrv"]).all() and (factors["rrv"] <= factors["rrv_high"]).all()
    ev = pd.DataFrame(payload["evaluation"]).set_index(["model", "coverage"])
    # the terrain, fitted on 2016-2018 only, puts more 2019 robberies in its top cells than chance would
    assert ev.loc[("rtm", 0.10), "pai"] > 1.5
    assert np.isfinite(ev.loc[("retro_count", 0.10), "pai"])
    assert (tmp_path / "out" / "risk_map.png").stat().st_size > 10_000


if __name__ == "__main__":
    target = Path(sys.argv[1])
    (target / "work").mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(target / "work", target), indent=2, default=str))
