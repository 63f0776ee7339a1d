"""The synthetic city's offence table and per-category behaviour, kept as data.

Two tables drive every mark the generator puts on an incident:

* :data:`OFFENSES` -- real City of Chicago IUCR codes with their published Primary Type,
  Description and FBI code, the canonical crimelens category each maps to (the same mapping the
  shipped ``chicago`` preset applies), the code's share within its category, and its arrest and
  domestic rates (rounded from a public Chicago extract).
* :data:`PROFILES` -- one row per canonical category: its share of all incidents, its time
  profile (hour-of-day peak and concentration, day-of-week weights, a weekend-night boost, an
  annual cycle), how it loads on the covariate surfaces, how strongly it is drawn to hot spots,
  its near-repeat multiplier, its reporting delay and the premises it happens at.

Changing the generator's realism is a matter of editing these tables, not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Offense:
    """One IUCR code as the Chicago portal publishes it, with its canonical category."""

    iucr: str
    primary_type: str
    description: str
    fbi_code: str
    category: str
    weight: float
    arrest: float
    domestic: float


@dataclass(frozen=True, slots=True)
class Profile:
    """How incidents of one canonical category behave in time and space.

    Attributes
    ----------
    share : float
        Share of all incidents (normalised over the table).
    hour_peak, hour_kappa, hour_floor : float
        Hour-of-day curve ``floor + exp(kappa * cos(2π (h - peak) / 24))`` in local time.
    weekday : tuple of 7 floats
        Monday..Sunday multipliers.
    weekend_night : float
        Extra multiplier ``1 + weekend_night`` for Friday/Saturday 20:00 to 04:00.
    annual_amp, annual_peak : float
        Annual cycle ``1 + amp * cos(2π (doy - peak) / 365.25)``.
    commercial, deprivation : float
        Log-linear loadings of the diffuse background on the standardised covariates.
    hotspot, street : float
        Affinity for persistent (neighbourhood-scale) and street-scale hot spots; 0 = never.
    contagion : float
        Near-repeat multiplier; branching ratios are proportional to it.
    delay_hours : float
        Median delay between occurrence and report (log-normal).
    police_initiated : bool
        Mostly found by police (drugs, weapons): part of it is recorded as ``police_initiated``.
    premises : tuple of (str, float)
        Chicago Location Description values and their weights.
    """

    share: float
    hour_peak: float
    hour_kappa: float
    hour_floor: float
    weekday: tuple[float, float, float, float, float, float, float]
    weekend_night: float
    annual_amp: float
    annual_peak: float
    commercial: float
    deprivation: float
    hotspot: float
    street: float
    contagion: float
    delay_hours: float
    police_initiated: bool
    premises: tuple[tuple[str, float], ...]


_WORKDAYS: Final = (1.12, 1.1, 1.08, 1.08, 1.08, 0.82, 0.72)
_WEEKEND: Final = (0.88, 0.84, 0.84, 0.88, 1.05, 1.3, 1.25)
_SATURDAY: Final = (0.92, 0.9, 0.9, 0.95, 1.05, 1.22, 1.06)
_FLAT: Final = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
_POLICE: Final = (1.05, 1.15, 1.15, 1.1, 1.05, 0.85, 0.65)

_STREET = "STREET"
_SIDEWALK = "SIDEWALK"
_RES = "RESIDENCE"
_APT = "APARTMENT"
_OTHER = "OTHER"
_ALLEY = "ALLEY"
_LOT = "PARKING LOT/GARAGE(NON.RESID.)"
_SMALL = "SMALL RETAIL STORE"
_VEH = "VEHICLE NON-COMMERCIAL"

#: Premises values whose incidents get the ``residential`` flag.
RESIDENTIAL_PREMISES: Final = frozenset(
    {_RES, _APT, "RESIDENCE PORCH/HALLWAY", "RESIDENCE-GARAGE", "RESIDENTIAL YARD (FRONT/BACK)",
     "DRIVEWAY - RESIDENTIAL"}
)


def _p(
    share: float, hour: tuple[float, float, float], weekday: tuple[float, ...], weekend_night: float,
    annual: tuple[float, float], cov: tuple[float, float], spots: tuple[float, float], contagion: float,
    delay: float, police: bool, premises: tuple[tuple[str, float], ...],
) -> Profile:
    wd = (weekday[0], weekday[1], weekday[2], weekday[3], weekday[4], weekday[5], weekday[6])
    return Profile(share, hour[0], hour[1], hour[2], wd, weekend_night, annual[0], annual[1], cov[0],
                   cov[1], spots[0], spots[1], contagion, delay, police, premises)


#: Canonical category -> behaviour. Shares are rounded from Chicago's published mix.
PROFILES: Final[dict[str, Profile]] = {
    #                 share  hour(peak,kappa,floor)  weekday  wkend-night annual(amp,peak) cov(comm,dep)
    #                 spots(hot,street) contagion delay(h) police premises
    "theft": _p(0.17, (15, 0.9, 0.25), _FLAT, 0.0, (0.15, 205), (0.8, -0.1), (1.0, 0.3), 0.9, 3.0, False,
                ((_STREET, 0.22), (_RES, 0.12), (_APT, 0.08), (_SIDEWALK, 0.08), (_SMALL, 0.1),
                 ("RESTAURANT", 0.08), (_LOT, 0.1), ("DEPARTMENT STORE", 0.06), (_OTHER, 0.16))),
    "shoplifting": _p(0.045, (16, 2.0, 0.02), _SATURDAY, 0.0, (0.12, 350), (1.6, 0.0), (1.0, 0.8), 0.6,
                      0.5, False,
                      (("DEPARTMENT STORE", 0.35), (_SMALL, 0.3), ("GROCERY FOOD STORE", 0.2),
                       ("DRUG STORE", 0.15))),
    "theft_from_person": _p(0.012, (17, 1.0, 0.2), _SATURDAY, 0.3, (0.1, 200), (1.2, 0.2), (0.6, 1.0), 1.0,
                            1.0, False,
                            ((_SIDEWALK, 0.4), ("CTA TRAIN", 0.2), ("CTA BUS", 0.15), (_STREET, 0.25))),
    "simple_assault": _p(0.2, (20, 0.8, 0.3), _WEEKEND, 0.6, (0.22, 200), (0.0, 0.5), (0.6, 0.0), 0.8,
                         0.5, False,
                         ((_APT, 0.3), (_RES, 0.25), (_STREET, 0.15), (_SIDEWALK, 0.12),
                          ("SCHOOL, PUBLIC, BUILDING", 0.06), (_OTHER, 0.12))),
    "aggravated_assault": _p(0.045, (23, 1.2, 0.15), _WEEKEND, 0.9, (0.28, 195), (0.0, 0.9), (1.0, 0.8),
                             1.3, 0.3, False,
                             ((_STREET, 0.35), (_SIDEWALK, 0.2), (_APT, 0.15), (_RES, 0.15), (_ALLEY, 0.05),
                              (_OTHER, 0.1))),
    "criminal_damage": _p(0.1, (21, 0.7, 0.3), _WEEKEND, 0.3, (0.18, 190), (0.1, 0.3), (0.5, 0.0), 0.8,
                          6.0, False,
                          ((_STREET, 0.35), (_RES, 0.25), (_APT, 0.12), (_LOT, 0.1), (_OTHER, 0.18))),
    "drugs": _p(0.07, (18, 1.5, 0.1), _POLICE, 0.0, (0.1, 180), (-0.2, 1.3), (1.6, 1.6), 0.8, 0.0, True,
                ((_STREET, 0.55), (_SIDEWALK, 0.25), (_ALLEY, 0.1), (_RES, 0.05), (_VEH, 0.05))),
    "burglary": _p(0.05, (12, 1.2, 0.2), _WORKDAYS, 0.0, (0.1, 215), (-0.4, 0.3), (1.0, 0.0), 1.6, 6.0,
                   False,
                   ((_RES, 0.45), (_APT, 0.3), ("RESIDENCE-GARAGE", 0.1),
                    ("COMMERCIAL / BUSINESS OFFICE", 0.05), (_SMALL, 0.05), (_OTHER, 0.05))),
    "vehicle_theft": _p(0.05, (21, 0.8, 0.3), _FLAT, 0.0, (0.1, 330), (0.2, 0.3), (0.8, 0.0), 1.2, 8.0,
                        False,
                        ((_STREET, 0.75), (_LOT, 0.12), ("DRIVEWAY - RESIDENTIAL", 0.05), (_ALLEY, 0.08))),
    "robbery": _p(0.04, (22, 1.0, 0.2), _WEEKEND, 0.4, (0.2, 230), (0.4, 0.6), (1.0, 1.0), 1.2, 0.5, False,
                  ((_SIDEWALK, 0.4), (_STREET, 0.3), (_ALLEY, 0.08), (_SMALL, 0.07), ("GAS STATION", 0.05),
                   ("CTA TRAIN", 0.05), (_OTHER, 0.05))),
    "fraud": _p(0.055, (12, 0.6, 0.4), _WORKDAYS, 0.0, (0.12, 20), (0.5, -0.3), (0.0, 0.0), 0.3, 240.0,
                False,
                ((_RES, 0.5), (_APT, 0.15), (_OTHER, 0.15), ("BANK", 0.1), (_SMALL, 0.1))),
    "weapons": _p(0.015, (22, 1.2, 0.15), _WEEKEND, 0.5, (0.2, 200), (-0.1, 1.2), (1.0, 1.0), 1.0, 0.0,
                  True, ((_STREET, 0.6), (_SIDEWALK, 0.2), (_VEH, 0.1), (_ALLEY, 0.1))),
    "homicide": _p(0.002, (1, 1.3, 0.15), _WEEKEND, 1.0, (0.35, 200), (-0.2, 1.4), (0.6, 0.0), 1.0, 0.2,
                   False, ((_STREET, 0.6), (_APT, 0.15), (_ALLEY, 0.1), (_RES, 0.1), (_VEH, 0.05))),
    "rape": _p(0.006, (2, 0.8, 0.3), _WEEKEND, 0.5, (0.2, 190), (0.0, 0.4), (0.0, 0.0), 0.4, 24.0, False,
               ((_APT, 0.4), (_RES, 0.4), (_OTHER, 0.2))),
    "sexual_offense_other": _p(0.004, (14, 0.5, 0.4), _FLAT, 0.0, (0.1, 190), (0.0, 0.3), (0.0, 0.0), 0.4,
                               24.0, False, ((_RES, 0.4), (_APT, 0.3), (_STREET, 0.1), (_OTHER, 0.2))),
    "other_crime": _p(0.065, (13, 0.6, 0.4), _WORKDAYS, 0.0, (0.08, 200), (0.0, 0.2), (0.0, 0.0), 0.4, 12.0,
                      False, ((_RES, 0.45), (_APT, 0.3), (_OTHER, 0.15), (_STREET, 0.1))),
    "public_order": _p(0.042, (15, 0.8, 0.3), _FLAT, 0.2, (0.12, 200), (0.6, 0.5), (0.6, 0.6), 0.6, 0.5,
                       False,
                       ((_STREET, 0.3), (_RES, 0.15), (_SMALL, 0.15), ("CTA TRAIN", 0.1),
                        ("SCHOOL, PUBLIC, BUILDING", 0.1), (_SIDEWALK, 0.1), (_OTHER, 0.1))),
    "prostitution": _p(0.005, (21, 1.5, 0.1), _POLICE, 0.3, (0.1, 200), (0.2, 1.0), (0.0, 2.0), 0.6, 0.0,
                       True, ((_STREET, 0.7), (_SIDEWALK, 0.3))),
    "arson": _p(0.002, (2, 1.0, 0.2), _FLAT, 0.3, (0.15, 185), (-0.3, 0.8), (0.0, 0.0), 0.6, 1.0, False,
                ((_RES, 0.4), ("VACANT LOT/LAND", 0.2), (_STREET, 0.2), (_APT, 0.2))),
    "kidnapping": _p(0.0015, (16, 0.5, 0.4), _FLAT, 0.0, (0.1, 200), (0.0, 0.3), (0.0, 0.0), 0.4, 2.0, False,
                     ((_STREET, 0.5), (_RES, 0.5))),
}

#: Categories the drifting hot spot carries (a burglary/theft pattern that moves, as offenders do).
DRIFT_CATEGORIES: Final = ("burglary", "theft")


def _o(iucr: str, ptype: str, desc: str, fbi: str, cat: str, w: float, arrest: float, dom: float) -> Offense:
    return Offense(iucr, ptype, desc, fbi, cat, w, arrest, dom)


#: Real Chicago IUCR codes (Primary Type, Description, FBI code as published).
OFFENSES: Final[tuple[Offense, ...]] = (
    _o("0820", "THEFT", "$500 AND UNDER", "06", "theft", 0.5, 0.08, 0.03),
    _o("0810", "THEFT", "OVER $500", "06", "theft", 0.32, 0.04, 0.03),
    _o("0890", "THEFT", "FROM BUILDING", "06", "theft", 0.18, 0.05, 0.05),
    _o("0860", "THEFT", "RETAIL THEFT", "06", "shoplifting", 1.0, 0.5, 0.0),
    _o("0870", "THEFT", "POCKET-PICKING", "06", "theft_from_person", 0.7, 0.02, 0.0),
    _o("0880", "THEFT", "PURSE-SNATCHING", "06", "theft_from_person", 0.3, 0.05, 0.0),
    _o("0486", "BATTERY", "DOMESTIC BATTERY SIMPLE", "08B", "simple_assault", 0.45, 0.25, 1.0),
    _o("0460", "BATTERY", "SIMPLE", "08B", "simple_assault", 0.3, 0.2, 0.08),
    _o("0560", "ASSAULT", "SIMPLE", "08A", "simple_assault", 0.25, 0.2, 0.25),
    _o("051A", "ASSAULT", "AGGRAVATED: HANDGUN", "04A", "aggravated_assault", 0.25, 0.15, 0.05),
    _o("0520", "ASSAULT", "AGGRAVATED:KNIFE/CUTTING INSTR", "04A", "aggravated_assault", 0.2, 0.25, 0.2),
    _o("041A", "BATTERY", "AGGRAVATED: HANDGUN", "04B", "aggravated_assault", 0.3, 0.1, 0.02),
    _o("0430", "BATTERY", "AGGRAVATED: OTHER DANG WEAPON", "04B", "aggravated_assault", 0.25, 0.3, 0.3),
    _o("1310", "CRIMINAL DAMAGE", "TO PROPERTY", "14", "criminal_damage", 0.5, 0.08, 0.15),
    _o("1320", "CRIMINAL DAMAGE", "TO VEHICLE", "14", "criminal_damage", 0.5, 0.05, 0.05),
    _o("1811", "NARCOTICS", "POSS: CANNABIS 30GMS OR LESS", "18", "drugs", 0.45, 0.99, 0.0),
    _o("2027", "NARCOTICS", "POSS: CRACK", "18", "drugs", 0.3, 0.99, 0.0),
    _o("2024", "NARCOTICS", "POSS: HEROIN(WHITE)", "18", "drugs", 0.25, 0.99, 0.0),
    _o("0610", "BURGLARY", "FORCIBLE ENTRY", "05", "burglary", 0.62, 0.03, 0.01),
    _o("0620", "BURGLARY", "UNLAWFUL ENTRY", "05", "burglary", 0.28, 0.04, 0.02),
    _o("0630", "BURGLARY", "ATTEMPT FORCIBLE ENTRY", "05", "burglary", 0.1, 0.03, 0.01),
    _o("0910", "MOTOR VEHICLE THEFT", "AUTOMOBILE", "07", "vehicle_theft", 1.0, 0.04, 0.01),
    _o("031A", "ROBBERY", "ARMED: HANDGUN", "03", "robbery", 0.45, 0.04, 0.01),
    _o("0320", "ROBBERY", "STRONGARM - NO WEAPON", "03", "robbery", 0.55, 0.06, 0.03),
    _o("1150", "DECEPTIVE PRACTICE", "CREDIT CARD FRAUD", "11", "fraud", 0.4, 0.05, 0.01),
    _o("1153", "DECEPTIVE PRACTICE", "FINANCIAL IDENTITY THEFT OVER $ 300", "11", "fraud", 0.35, 0.02, 0.01),
    _o("1130", "DECEPTIVE PRACTICE", "FRAUD OR CONFIDENCE GAME", "11", "fraud", 0.25, 0.08, 0.02),
    _o("143A", "WEAPONS VIOLATION", "UNLAWFUL POSS OF HANDGUN", "15", "weapons", 1.0, 0.85, 0.0),
    _o("0110", "HOMICIDE", "FIRST DEGREE MURDER", "01A", "homicide", 1.0, 0.44, 0.1),
    _o("0281", "CRIM SEXUAL ASSAULT", "NON-AGGRAVATED", "02", "rape", 1.0, 0.05, 0.13),
    _o("1563", "SEX OFFENSE", "CRIMINAL SEXUAL ABUSE", "17", "sexual_offense_other", 1.0, 0.1, 0.07),
    _o("2826", "OTHER OFFENSE", "HARASSMENT BY ELECTRONIC MEANS", "26", "other_crime", 0.35, 0.05, 0.25),
    _o("2820", "OTHER OFFENSE", "TELEPHONE THREAT", "26", "other_crime", 0.35, 0.05, 0.3),
    _o("4387", "OTHER OFFENSE", "VIOLATE ORDER OF PROTECTION", "26", "other_crime", 0.3, 0.5, 1.0),
    _o("1330", "CRIMINAL TRESPASS", "TO LAND", "26", "public_order", 0.65, 0.73, 0.02),
    _o("0470", "PUBLIC PEACE VIOLATION", "RECKLESS CONDUCT", "24", "public_order", 0.35, 0.65, 0.04),
    _o("1506", "PROSTITUTION", "SOLICIT ON PUBLIC WAY", "16", "prostitution", 1.0, 1.0, 0.0),
    _o("1020", "ARSON", "BY FIRE", "09", "arson", 1.0, 0.05, 0.0),
    _o("4230", "KIDNAPPING", "UNLAWFUL RESTRAINT", "26", "kidnapping", 1.0, 0.14, 0.1),
)

#: Category names in table order (the generator's category index).
CATEGORY_NAMES: Final = tuple(PROFILES)

#: The Primary Type written by the "unmapped category" dirt: no preset can know it.
UNMAPPED_PRIMARY_TYPE: Final = "MADE UP OFFENSE"
UNMAPPED_DESCRIPTION: Final = "NOT A REAL OFFENSE"
UNMAPPED_IUCR: Final = "9999"

#: Base names of synthetic streets (numbered streets are generated on the south side).
STREET_NAMES: Final = (
    "OAK", "ELM", "MAPLE", "CEDAR", "BIRCH", "WILLOW", "ASPEN", "HAZEL", "LAUREL", "SPRUCE", "POPLAR",
    "LINDEN", "HICKORY", "WALNUT", "CHESTNUT", "SYCAMORE", "MAGNOLIA", "JUNIPER", "CYPRESS", "ALDER",
    "HARBOR", "PRAIRIE", "MEADOW", "ORCHARD", "RIVERSIDE", "LAKEVIEW", "HILLSIDE", "PARKSIDE", "FAIRVIEW",
    "BAYSIDE", "GRANITE", "MARBLE", "COPPER", "SILVER", "AMBER", "IVORY", "CORAL", "INDIGO", "SCARLET",
    "SAFFRON", "FALCON", "HERON", "ORIOLE", "CARDINAL", "SPARROW", "KESTREL", "PLOVER", "WREN", "ROBIN",
    "FINCH", "ARCHER", "BAKER", "CARVER", "DRAPER", "FLETCHER", "GARDNER", "MASON", "PORTER", "SAWYER",
    "TANNER", "WEAVER", "COOPER", "MILLER", "TURNER", "WALKER", "HUNTER", "FISHER", "SHEPHERD", "THATCHER",
    "CHANDLER", "BEACON", "CANAL", "DEPOT", "FOUNDRY", "MARKET", "MILL", "QUARRY", "SCHOOL", "TEMPLE",
    "UNION",
)
STREET_SUFFIXES: Final = ("AVE", "ST", "BLVD", "DR", "PL", "RD", "CT", "PKWY")
