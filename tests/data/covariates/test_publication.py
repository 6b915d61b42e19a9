"""Each source's publication rule, on days that tell a wrong rule apart: summer and winter
time, weekends, US holidays, weekly releases."""

import numpy as np
import pytest

from volcast.data.covariates import publication
from volcast.data.timeframe import parse_time
from volcast.errors import VolcastError


def ms(*texts):
    return np.array([parse_time(t) for t in texts], dtype=np.int64)


def test_fear_greed_dated_d_is_public_at_d_midnight_utc():
    days = ms("2024-07-15", "2024-01-15")
    assert publication.fear_greed(days).tolist() == days.tolist()


@pytest.mark.parametrize(("day", "public"), [
    ("2024-07-15", "2024-07-15T20:15Z"),  # EDT: UTC-4
    ("2024-01-15", "2024-01-15T21:15Z"),  # EST: UTC-5
    ("2024-03-08", "2024-03-08T21:15Z"),  # the Friday before the switch to summer time
    ("2024-03-11", "2024-03-11T20:15Z"),  # the Monday after it
    ("2023-11-03", "2023-11-03T20:15Z"),  # the Friday before the switch back
    ("2023-11-06", "2023-11-06T21:15Z"),
])
def test_vix_close_is_public_at_16_15_new_york(day, public):
    assert publication.vix(ms(day)).tolist() == ms(public).tolist()


@pytest.mark.parametrize(("series", "day", "public"), [
    ("DGS10", "2024-07-15", "2024-07-16T22:00Z"),  # Monday -> Tuesday, 18:00 EDT
    ("DGS10", "2024-07-26", "2024-07-29T22:00Z"),  # Friday -> Monday, never the weekend
    ("VIXCLS", "2024-07-03", "2024-07-05T22:00Z"),  # July 4th is a holiday
    ("DGS10", "2024-01-12", "2024-01-16T23:00Z"),  # Friday, then MLK day: Tuesday, 18:00 EST
    ("DTWEXBGS", "2024-07-10", "2024-07-15T22:00Z"),  # H.10: the Monday after the week
    ("DTWEXBGS", "2024-07-08", "2024-07-15T22:00Z"),  # a Monday waits a whole week
    ("DTWEXBGS", "2024-02-16", "2024-02-20T23:00Z"),  # Presidents' Day Monday: Tuesday
])
def test_fred_observations_are_public_when_fred_has_them(series, day, public):
    assert publication.fred(series)(ms(day)).tolist() == ms(public).tolist()


def test_a_fred_series_without_a_known_release_is_refused():
    with pytest.raises(VolcastError, match=r"'CPIAUCSL' has no publication rule.*DGS10"):
        publication.fred("CPIAUCSL")


def test_every_rule_is_never_before_the_time_a_value_is_dated():
    days = np.arange(parse_time("2017-01-01"), parse_time("2024-08-01"), 86_400_000)
    rules = [publication.fear_greed, publication.vix, publication.funding,
             *publication.FRED_RULES.values(), lambda t: publication.open_interest(t, 3_600_000)]
    for rule in rules:
        assert (rule(days) >= days).all()


def test_funding_at_its_time_and_open_interest_at_the_end_of_its_period():
    t = ms("2024-07-15T08:00Z")
    assert publication.funding(t).tolist() == t.tolist()
    assert publication.open_interest(t, 3_600_000).tolist() == ms("2024-07-15T09:00Z").tolist()
