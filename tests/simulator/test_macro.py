"""The macro simulator answers as alternative.me, CBOE and FRED do."""

import json
import urllib.error
import urllib.request

import pytest

from volcast.data.timeframe import parse_time
from volcast.errors import VolcastError
from volcast.simulator.macro import MacroConfig, running


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def sim():
    with running(MacroConfig(fred_api_key="k")) as started:
        yield started.url


def test_fear_greed_newest_first_limit_zero_is_all(sim):
    _, text = get(f"{sim}/fng/?limit=2&format=json")
    body = json.loads(text)
    assert [d["timestamp"] for d in body["data"]] == [str(parse_time("2024-07-31") // 1000),
                                                      str(parse_time("2024-07-30") // 1000)]
    assert body["data"][0]["value"] == "61" and body["metadata"] == {"error": None}
    assert len(json.loads(get(f"{sim}/fng/?limit=0")[1])["data"]) == 2370
    assert len(json.loads(get(f"{sim}/fng/")[1])["data"]) == 1


def test_cboe_history_is_their_csv_with_a_final_line_break(sim):
    status, text = get(f"{sim}/api/global/us_indices/daily_prices/VIX_History.csv")
    lines = text.split("\n")
    assert status == 200 and text.endswith("\n")
    assert lines[:2] == ["DATE,OPEN,HIGH,LOW,CLOSE", "01/03/2017,14.070000,14.070000,"
                         "12.850000,12.850000"]


def test_fred_pages_and_refuses_as_fred_does(sim):
    url = f"{sim}/fred/series/observations?file_type=json"
    base = f"{url}&api_key=k&series_id=VIXCLS"
    _, text = get(f"{base}&observation_start=2024-07-01&offset=20&limit=2")
    body = json.loads(text)
    assert body["count"] == 23 and [o["date"] for o in body["observations"]] == [
        "2024-07-29", "2024-07-30"]
    holiday = json.loads(get(f"{base}&observation_start=2017-01-16&limit=1")[1])
    assert holiday["observations"][0]["value"] == "."  # MLK day: no close in the file
    for query, fragment in [(f"{base}&limit=0", "limit"),
                            (f"{url}&api_key=x&series_id=VIXCLS", "not registered"),
                            (f"{url}&series_id=VIXCLS", "api_key is not set"),
                            (f"{url}&api_key=k&series_id=CPIAUCSL", "does not exist")]:
        status, text = get(query)
        assert status == 400 and fragment in json.loads(text)["error_message"]


def test_a_folder_without_the_files_is_one_line(tmp_path):
    with pytest.raises(VolcastError, match=r"holds no fear_greed\.csv"), running(
            MacroConfig(tmp_path)):
        pass
