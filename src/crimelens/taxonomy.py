"""The canonical offence taxonomy every source is mapped onto.

Cities publish different offence lists, so each record carries several labels instead of one
(see ``docs/schema.md``):

* ``category`` -- a canonical leaf (``burglary``) or, where the source is coarser, a roll-up
  (``assault``, ``violence_and_sexual``) with ``category_precision`` saying which;
* ``category_group`` -- violent, property, society, non_crime or other;
* ``crimes_against`` -- the NIBRS view (person, property, society): robbery is *violent* in UCR
  terms but a crime against *property* in NIBRS;
* ``ucr_part1`` -- the FBI UCR Part I headline view (violent, property, none).

The leaves follow the FBI's NIBRS offence groups (the US standard since 2021) with the Home Office
groups of England and Wales as roll-ups. The mapping from a source's own offence names lives in the
presets (data), never in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from crimelens.exceptions import InputError

Group = Literal["violent", "property", "society", "non_crime", "other"]
CrimesAgainst = Literal["person", "property", "society", "none"]
UcrPart1 = Literal["violent", "property", "none"]
Precision = Literal["leaf", "rollup", "group"]


@dataclass(frozen=True, slots=True)
class Category:
    """One canonical category with the labels every record of it carries."""

    name: str
    group: Group
    crimes_against: CrimesAgainst
    ucr_part1: UcrPart1
    precision: Precision
    description: str


def _c(
    name: str, group: Group, against: CrimesAgainst, ucr: UcrPart1, precision: Precision, text: str
) -> Category:
    return Category(name, group, against, ucr, precision, text)


CATEGORIES: tuple[Category, ...] = (
    # violent
    _c("homicide", "violent", "person", "violent", "leaf", "murder and non-negligent manslaughter"),
    _c("rape", "violent", "person", "violent", "leaf", "rape (NIBRS forcible sex offences: rape)"),
    _c("sexual_offense_other", "violent", "person", "none", "leaf", "other sexual offences"),
    _c("robbery", "violent", "property", "violent", "leaf", "taking by force or threat"),
    _c("aggravated_assault", "violent", "person", "violent", "leaf", "assault with weapon or injury"),
    _c("simple_assault", "violent", "person", "none", "leaf", "assault without weapon or serious injury"),
    _c("kidnapping", "violent", "person", "none", "leaf", "kidnapping and abduction"),
    _c("human_trafficking", "violent", "person", "none", "leaf", "human trafficking"),
    # property
    _c("burglary", "property", "property", "property", "leaf", "breaking and entering"),
    _c("theft", "property", "property", "property", "leaf", "larceny not elsewhere classified"),
    _c("shoplifting", "property", "property", "property", "leaf", "theft from a shop"),
    _c("theft_from_person", "property", "property", "property", "leaf", "pocket-picking, purse-snatching"),
    _c("vehicle_theft", "property", "property", "property", "leaf", "theft of a motor vehicle"),
    _c("theft_from_vehicle", "property", "property", "property", "leaf", "theft from or of parts of a vehicle"),
    _c("bicycle_theft", "property", "property", "property", "leaf", "theft of a bicycle"),
    _c("arson", "property", "property", "property", "leaf", "arson"),
    _c("criminal_damage", "property", "property", "none", "leaf", "vandalism and criminal damage"),
    _c("fraud", "property", "property", "none", "leaf", "fraud, forgery, embezzlement"),
    _c("stolen_property", "property", "property", "none", "leaf", "receiving or possessing stolen goods"),
    _c("extortion", "property", "property", "none", "leaf", "extortion and blackmail"),
    # society
    _c("drugs", "society", "society", "none", "leaf", "drug and narcotic offences"),
    _c("weapons", "society", "society", "none", "leaf", "weapon law violations"),
    _c("public_order", "society", "society", "none", "leaf", "disorderly conduct, public order"),
    _c("prostitution", "society", "society", "none", "leaf", "prostitution offences"),
    _c("dui", "society", "society", "none", "leaf", "driving under the influence"),
    _c("gambling", "society", "society", "none", "leaf", "gambling offences"),
    _c("other_society", "society", "society", "none", "leaf", "other crimes against society"),
    # non-crime
    _c("anti_social_behaviour", "non_crime", "none", "none", "leaf", "anti-social behaviour (not a crime)"),
    _c("non_criminal", "non_crime", "none", "none", "leaf", "warrants, missing persons, lost property"),
    # other
    _c("other_crime", "other", "none", "none", "leaf", "a crime the source does not classify further"),
    _c("unknown", "other", "none", "none", "leaf", "no usable offence information"),
    _c("gunshot_detected", "other", "none", "none", "leaf",
       "acoustic gunshot detection (a sensor event, not a recorded crime)"),
    # roll-ups for coarse sources
    _c("assault", "violent", "person", "none", "rollup", "aggravated + simple assault"),
    _c("sexual_offense", "violent", "person", "none", "rollup", "rape + other sexual offences"),
    _c("violence_and_sexual", "violent", "person", "none", "rollup", "police.uk violence and sexual offences"),
    _c("vehicle_crime", "property", "property", "property", "rollup", "vehicle theft + theft from vehicle"),
    _c("criminal_damage_and_arson", "property", "property", "none", "rollup", "criminal damage + arson"),
)

BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}

GROUPS: tuple[Group, ...] = ("violent", "property", "society", "non_crime", "other")

#: Roll-up → the leaves it covers.
ROLLUPS: dict[str, tuple[str, ...]] = {
    "assault": ("aggravated_assault", "simple_assault"),
    "sexual_offense": ("rape", "sexual_offense_other"),
    "violence_and_sexual": (
        "homicide", "rape", "sexual_offense_other", "aggravated_assault", "simple_assault",
        "kidnapping", "human_trafficking",
    ),
    "vehicle_crime": ("vehicle_theft", "theft_from_vehicle"),
    "criminal_damage_and_arson": ("criminal_damage", "arson"),
}

#: Flags a record may carry where its source says so.
FLAGS: tuple[str, ...] = ("attempted", "firearm", "domestic", "hate", "residential")


def category(name: str) -> Category:
    """Return the canonical category called ``name``.

    Raises
    ------
    InputError
        If ``name`` is not in the taxonomy; the message lists the closest names.
    """
    try:
        return BY_NAME[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, BY_NAME, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InputError(f"unknown category {name!r}{hint}") from None


def is_crime(name: str) -> bool:
    """True unless the category is in the non-crime group (excluded from 'all crime' totals)."""
    return category(name).group != "non_crime"


def expand(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand roll-ups and group names into the category names a filter should match.

    A filter on ``assault`` also matches records mapped to its leaves, and a filter on the group
    ``violent`` matches every violent category, leaf or roll-up.
    """
    out: list[str] = []
    for n in names:
        if n in GROUPS:
            out.extend(c.name for c in CATEGORIES if c.group == n)
        else:
            category(n)
            out.append(n)
            out.extend(ROLLUPS.get(n, ()))
    return sorted(set(out))
