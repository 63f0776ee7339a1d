"""Small generated files in the published formats of police.uk stop and search and NYPD arrests."""

from __future__ import annotations

import csv
from pathlib import Path

STOPS_HEADER = [
    "Type", "Date", "Part of a policing operation", "Policing operation", "Latitude", "Longitude", "Gender",
    "Age range", "Self-defined ethnicity", "Officer-defined ethnicity", "Legislation", "Object of search",
    "Outcome", "Outcome linked to object of search", "Removal of more than just outer clothing",
]
ARRESTS_HEADER = [
    "ARREST_KEY", "ARREST_DATE", "PD_CD", "PD_DESC", "KY_CD", "OFNS_DESC", "LAW_CODE", "LAW_CAT_CD", "ARREST_BORO",
    "ARREST_PRECINCT", "JURISDICTION_CODE", "AGE_GROUP", "PERP_SEX", "PERP_RACE", "X_COORD_CD", "Y_COORD_CD",
    "Latitude", "Longitude",
]


def stop_row(i: int, *, ethnicity: str = "White", outcome: str = "A no further action disposal",
             linked: str = "False", obj: str = "Controlled drugs") -> dict[str, str]:
    """One stop-and-search record as police.uk publishes it."""
    return {
        "Type": "Person search", "Date": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:15:00+00:00",
        "Part of a policing operation": "False", "Policing operation": "", "Latitude": f"{51.50 + (i % 50) / 1000:.6f}",
        "Longitude": f"{-0.12 - (i % 40) / 1000:.6f}", "Gender": "Male" if i % 3 else "Female",
        "Age range": ("18-24", "25-34", "over 34", "10-17")[i % 4],
        "Self-defined ethnicity": f"{ethnicity} - English/Welsh/Scottish/Northern Irish/British",
        "Officer-defined ethnicity": ethnicity, "Legislation": "Misuse of Drugs Act 1971 (section 23)",
        "Object of search": obj, "Outcome": outcome, "Outcome linked to object of search": linked,
        "Removal of more than just outer clothing": "False",
    }


def arrest_row(i: int, *, race: str = "BLACK", offence: str = "DANGEROUS DRUGS") -> dict[str, str]:
    """One NYPD arrest record as NYC Open Data publishes it."""
    return {
        "ARREST_KEY": str(260_000_000 + i), "ARREST_DATE": f"01/{1 + i % 28:02d}/2024", "PD_CD": "511",
        "PD_DESC": "CONTROLLED SUBSTANCE, POSSESSION 7", "KY_CD": "235", "OFNS_DESC": offence,
        "LAW_CODE": "PL 2200300", "LAW_CAT_CD": "M", "ARREST_BORO": "K", "ARREST_PRECINCT": str(70 + i % 5),
        "JURISDICTION_CODE": "0", "AGE_GROUP": ("18-24", "25-44", "45-64")[i % 3], "PERP_SEX": "M",
        "PERP_RACE": race, "X_COORD_CD": "995000", "Y_COORD_CD": "180000",
        "Latitude": f"{40.65 + (i % 30) / 1000:.6f}", "Longitude": f"{-73.95 + (i % 30) / 1000:.6f}",
    }


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    """Write ``rows`` as a CSV file with ``header``."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path
