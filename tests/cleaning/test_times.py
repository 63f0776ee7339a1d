import pandas as pd

from crimelens.cleaning.times import parse_times, precision_of_format


def codes(s: pd.Series) -> list[str | None]:
    return [x if isinstance(x, str) else None for x in s]

NOW = pd.Timestamp("2024-06-01", tz="UTC")


def test_local_time_with_misleading_offset() -> None:
    s = pd.Series(["2023-01-01 08:00:00+00", "2023-07-01 08:00:00+00"])
    t = parse_times(s, timezone="America/New_York", fmt="%Y-%m-%d %H:%M:%S", local=True, now=NOW)
    assert t.utc.tolist() == [pd.Timestamp("2023-01-01 13:00", tz="UTC"), pd.Timestamp("2023-07-01 12:00", tz="UTC")]


def test_true_offsets_are_respected_when_not_local() -> None:
    s = pd.Series(["2023-01-01T08:00:00+02:00"])
    t = parse_times(s, timezone="America/New_York", now=NOW)
    assert t.utc.iloc[0] == pd.Timestamp("2023-01-01 06:00", tz="UTC")


def test_separate_hour_and_clock_columns() -> None:
    d = pd.Series(["2020/03/02", "2020/03/02", "2020/03/02"])
    t = parse_times(d, timezone="America/Toronto", fmt="%Y/%m/%d", hour=pd.Series(["8", "23", "24"]), now=NOW)
    local = t.utc.dt.tz_convert("America/Toronto")
    assert local.dt.hour.tolist()[:2] == [8, 23]
    assert codes(t.reason) == [None, None, "bad_hour"]
    c = parse_times(d, timezone="America/Los_Angeles", fmt="%Y/%m/%d", clock=pd.Series(["5", "2230", "12:07"]), now=NOW)
    local = c.utc.dt.tz_convert("America/Los_Angeles")
    assert [(x.hour, x.minute) for x in local] == [(0, 5), (22, 30), (12, 7)]


def test_implausible_and_garbage_dates() -> None:
    s = pd.Series(["1899-12-31 10:00", "2100-01-01 00:00", "not a date", None, "2024-02-30 10:00", "2024-02-01 10:00"])
    t = parse_times(s, timezone="UTC", fmt="%Y-%m-%d %H:%M", now=NOW)
    assert codes(t.reason) == ["date_too_old", "date_in_future", "bad_date", "missing_date", "bad_date", None]
    assert t.utc.isna().tolist() == [True] * 5 + [False]


def test_mixed_formats_in_one_column_fall_back() -> None:
    s = pd.Series(["01/15/2024 11:30:00 PM", "2024-01-16 08:00:00", "16 Jan 2024 09:00"])
    t = parse_times(s, timezone="America/Chicago", fmt="%m/%d/%Y %I:%M:%S %p", now=NOW)
    assert t.reason.isna().all()
    assert t.fallback == 2
    assert t.utc.dt.tz_convert("America/Chicago").dt.hour.tolist() == [23, 8, 9]


def test_dst_edges_do_not_fail() -> None:
    s = pd.Series(["2023-03-12 02:30", "2023-11-05 01:30"])  # skipped and repeated hours in Chicago
    t = parse_times(s, timezone="America/Chicago", fmt="%Y-%m-%d %H:%M", now=NOW)
    assert t.utc.notna().all()


def test_precision_from_format() -> None:
    assert precision_of_format("%Y-%m") == "month"
    assert precision_of_format("%m/%d/%Y %I:%M:%S %p") == "minute"
    assert precision_of_format("%Y/%m/%d") == "day"


def test_impossible_dates_are_refused_not_rolled_into_the_next_month() -> None:
    """Arrow's strptime rolls Feb 30 to Mar 2 and Apr 31 to May 1; every such value is caught,
    and the real first days of those months (and dates before 1970) still parse."""
    fmt = "%m/%d/%Y %I:%M:%S %p"
    bad = ["02/29/2023 01:00:00 AM", "02/30/2024 11:00:00 PM", "02/31/2022 01:00:00 AM", "04/31/2022 01:00:00 AM",
           "06/31/2021 01:00:00 PM", "09/31/1965 01:00:00 AM", "11/31/2022 01:00:00 AM"]
    good = ["03/01/2023 01:00:00 AM", "03/02/2024 11:00:00 PM", "03/03/2022 01:00:00 AM", "05/01/2022 01:00:00 AM",
            "07/01/2021 01:00:00 PM", "10/01/1965 01:00:00 AM", "12/01/2022 01:00:00 AM", "02/29/2024 01:00:00 AM",
            "12/31/1969 11:59:59 PM"]
    t = parse_times(pd.Series(bad + good), timezone="UTC", fmt=fmt, now=NOW)
    assert codes(t.reason) == ["bad_date"] * len(bad) + [None] * len(good)
    assert [str(v.date()) for v in t.utc.iloc[len(bad):]] == [
        "2023-03-01", "2024-03-02", "2022-03-03", "2022-05-01", "2021-07-01", "1965-10-01", "2022-12-01",
        "2024-02-29", "1969-12-31"]
