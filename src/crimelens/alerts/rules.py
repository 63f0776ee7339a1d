"""User rules and subscriptions, read from a TOML or JSON file (or a dict from the API).

A rule book looks like this (TOML)::

    cooldown_hours = 72            # repeat alerts on the same key are held back this long

    [[rule]]
    name = "burglary series"
    type = "series"                # N+ incidents within radius_m and days of each other
    categories = ["burglary"]
    min_count = 3
    radius_m = 400
    days = 7

    [[rule]]
    name = "gunfire cluster"
    type = "series"                # windows shorter than a day: `hours` replaces `days`
    categories = ["gunshot_detected"]
    min_count = 3                  # 3 acoustic detections within 500 m in the last hour
    radius_m = 500
    hours = 1
    severity = "high"

    [[rule]]
    name = "any homicide"
    type = "watch"                 # every incident of these categories
    categories = ["homicide"]
    severity = "critical"

    [[rule]]
    name = "district 004 robbery"
    type = "threshold"             # count in an area over the last `days` reaches min_count
    categories = ["robbery"]
    area_level = "district"
    areas = ["004"]
    min_count = 10
    days = 7

    [[subscription]]
    name = "burglary team"
    email = ["burglary-team@example.org"]
    webhooks = ["https://hooks.example.org/crimelens"]
    categories = ["burglary", "violent"]   # names, roll-ups or groups; empty = all
    area_level = "district"
    areas = ["004", "005"]                 # empty = all
    kinds = ["spike", "series"]            # empty = all
    min_severity = "medium"

Category names may be leaves, roll-ups or groups (``violent``); they are expanded with the
taxonomy. Secrets (SMTP passwords, webhook keys) never belong here: they come from settings.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal

from crimelens.alerts.model import KINDS, SEVERITIES, Alert, AlertKind, Severity, severity_rank
from crimelens.alerts.panel import AREA_LEVELS
from crimelens.exceptions import InputError
from crimelens.taxonomy import expand

RuleType = Literal["series", "watch", "threshold"]
RULE_TYPES: Final = ("series", "watch", "threshold")


def _names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise InputError(f"{what} must be a string or a list of strings")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One user rule (see the module docstring)."""

    name: str
    type: RuleType
    categories: tuple[str, ...]
    area_level: str = "district"
    areas: tuple[str, ...] = ()
    min_count: int = 3
    radius_m: float = 400.0
    days: int = 7
    #: A window in hours (e.g. 1 for sensor detections); replaces ``days`` when given.
    hours: float | None = None
    severity: Severity | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise InputError("every rule needs a name")
        if self.type not in RULE_TYPES:
            raise InputError(f"rule {self.name!r}: type must be one of {', '.join(RULE_TYPES)}, got {self.type!r}")
        if not self.categories:
            raise InputError(f"rule {self.name!r}: give at least one category")
        expand(list(self.categories))  # raises on unknown names
        if self.area_level not in AREA_LEVELS:
            raise InputError(f"rule {self.name!r}: unknown area_level {self.area_level!r}")
        if self.min_count < 1 or self.days < 1 or self.radius_m <= 0:
            raise InputError(f"rule {self.name!r}: min_count and days must be >= 1 and radius_m positive")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise InputError(f"rule {self.name!r}: severity must be one of {', '.join(SEVERITIES)}")
        if self.hours is not None and not 0 < self.hours <= 24 * self.days:
            raise InputError(f"rule {self.name!r}: hours must be positive and at most days * 24")

    @property
    def window(self) -> timedelta:
        """The rule's window: ``hours`` when given, else ``days``."""
        return timedelta(hours=self.hours) if self.hours is not None else timedelta(days=self.days)

    @property
    def expanded(self) -> list[str]:
        """The category names the rule matches."""
        return expand(list(self.categories))


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """Who receives which alerts, and how."""

    name: str
    email: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    area_level: str | None = None
    areas: tuple[str, ...] = ()
    kinds: tuple[AlertKind, ...] = ()
    min_severity: Severity = "low"

    def __post_init__(self) -> None:
        if not self.name:
            raise InputError("every subscription needs a name")
        if self.categories:
            expand(list(self.categories))
        if self.min_severity not in SEVERITIES:
            raise InputError(f"subscription {self.name!r}: min_severity must be one of {', '.join(SEVERITIES)}")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise InputError(f"subscription {self.name!r}: unknown alert kinds {bad}")
        if self.areas and self.area_level is None:
            raise InputError(f"subscription {self.name!r}: areas need an area_level")
        for url in self.webhooks:
            if not url.startswith(("http://", "https://")):
                raise InputError(f"subscription {self.name!r}: webhook {url!r} is not an http(s) URL")

    def matches(self, alert: Alert) -> bool:
        """True when this subscription wants ``alert``."""
        if severity_rank(alert.severity) < severity_rank(self.min_severity):
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.categories and alert.category not in expand(list(self.categories)) \
                and alert.category not in self.categories:
            return False
        if self.areas:
            return alert.area_level == self.area_level and alert.area in self.areas
        return True


@dataclass(frozen=True)
class RuleBook:
    """Rules, subscriptions and the cool-down between repeated alerts on the same key."""

    rules: tuple[Rule, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    cooldown_hours: float = 72.0
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise InputError("rule names must be unique")
        if self.cooldown_hours < 0:
            raise InputError("cooldown_hours must not be negative")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> RuleBook:
        """Build from parsed TOML/JSON (keys ``rule``/``rules``, ``subscription``/``subscriptions``)."""
        known = {"rule", "rules", "subscription", "subscriptions", "cooldown_hours"}
        extra = set(data) - known
        if extra:
            raise InputError(f"unknown keys in rule book: {', '.join(sorted(extra))}")
        rules = [_rule(r) for r in (data.get("rule") or data.get("rules") or [])]
        subs = [_subscription(s) for s in (data.get("subscription") or data.get("subscriptions") or [])]
        return cls(tuple(rules), tuple(subs), float(data.get("cooldown_hours", 72.0)), source=source)

    @classmethod
    def load(cls, path: str | Path) -> RuleBook:
        """Read a ``.toml`` or ``.json`` rule book."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{p}: cannot read rule book ({exc.strerror})") from exc
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"{p}: a rule book must be a table/object")
        return cls.from_dict(data, source=str(p))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (round-trips through :meth:`from_dict`)."""
        def clean(d: dict[str, Any]) -> dict[str, Any]:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if v is not None}
        return {"cooldown_hours": self.cooldown_hours,
                "rules": [clean(asdict(r)) for r in self.rules],
                "subscriptions": [clean(asdict(s)) for s in self.subscriptions]}

    def recipients(self, alert: Alert) -> list[Subscription]:
        """Subscriptions that want ``alert``."""
        return [s for s in self.subscriptions if s.matches(alert)]


def _check_keys(d: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = set(d) - allowed
    if extra:
        raise InputError(f"{what}: unknown keys {', '.join(sorted(extra))}")


def _rule(d: Mapping[str, Any]) -> Rule:
    if not isinstance(d, Mapping):
        raise InputError("each rule must be a table/object")
    name = str(d.get("name", ""))
    _check_keys(d, {"name", "type", "categories", "category", "area_level", "areas", "min_count", "radius_m",
                    "days", "hours", "severity", "enabled"}, f"rule {name!r}")
    try:
        return Rule(
            name=name, type=d.get("type", ""), categories=_names(d.get("categories", d.get("category")),
                                                                 "categories"),
            area_level=str(d.get("area_level", "district")), areas=_names(d.get("areas"), "areas"),
            min_count=int(d.get("min_count", 3)), radius_m=float(d.get("radius_m", 400.0)),
            days=int(d.get("days", 7)), hours=float(d["hours"]) if d.get("hours") is not None else None,
            severity=d.get("severity"), enabled=bool(d.get("enabled", True)),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"rule {name!r}: {exc}") from exc


def _subscription(d: Mapping[str, Any]) -> Subscription:
    if not isinstance(d, Mapping):
        raise InputError("each subscription must be a table/object")
    name = str(d.get("name", ""))
    _check_keys(d, {"name", "email", "webhooks", "webhook", "categories", "area_level", "areas", "kinds",
                    "min_severity"}, f"subscription {name!r}")
    return Subscription(
        name=name, email=_names(d.get("email"), "email"),
        webhooks=_names(d.get("webhooks", d.get("webhook")), "webhooks"),
        categories=_names(d.get("categories"), "categories"),
        area_level=d.get("area_level"), areas=_names(d.get("areas"), "areas"),
        kinds=_names(d.get("kinds"), "kinds"),  # type: ignore[arg-type]  # validated in __post_init__
        min_severity=d.get("min_severity", "low"),
    )
