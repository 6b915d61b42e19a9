import pytest

from volcast.data.timeframe import format_time, parse_time, timeframe_ms
from volcast.errors import VolcastError


@pytest.mark.parametrize(("tf", "ms"), [("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000),
                                        ("4h", 14_400_000), ("1d", 86_400_000),
                                        ("1w", 604_800_000)])
def test_timeframe_lengths(tf, ms):
    assert timeframe_ms(tf) == ms


@pytest.mark.parametrize("tf", ["1M", "1y", "h", "0h", "60", "1 h", ""])
def test_variable_or_malformed_timeframes_are_refused(tf):
    with pytest.raises(VolcastError, match="unsupported timeframe"):
        timeframe_ms(tf)


@pytest.mark.parametrize(("text", "ms"), [
    ("2024-01-01", 1704067200000), ("2024-01-01T01:00Z", 1704070800000),
    ("2024-01-01T03:00+02:00", 1704070800000), ("1704067200000", 1704067200000)])
def test_parse_time_is_utc_milliseconds(text, ms):
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "01/02/2024"])
def test_bad_dates_name_the_value(text):
    with pytest.raises(VolcastError, match=f"bad date '{text}'"):
        parse_time(text)


def test_format_time_round_trips():
    assert format_time(parse_time("2024-07-31T23:00")) == "2024-07-31 23:00"
