"""``volcast covariates import|list``: files in, one-line errors, the store unchanged by a bad
file."""

import gzip
import json

import pandas as pd
import pytest

from volcast.data.covariates import table
from volcast.data.sample import exogenous_file
from volcast.data.store import CandleStore
from volcast.data.timeframe import parse_time

from .test_cli import assert_one_line_error

FEAR_GREED, VIX = exogenous_file("fear_greed"), exogenous_file("vix")


def stored(db, name):
    with CandleStore(db, read_only=True) as store:
        return table.read(store, name)


def cboe_file(path, vix):
    """The shared VIX file written as CBOE publishes it: DATE MM/DD/YYYY, OPEN, ..., CLOSE."""
    days = pd.to_datetime(vix["timestamp"], unit="ms").dt.strftime("%m/%d/%Y")
    cboe = vix.drop(columns="timestamp").rename(columns=str.upper)
    cboe.insert(0, "DATE", days)
    cboe.to_csv(path, index=False, float_format="%.6f")
    return path


def test_import_both_shared_files_and_again_adds_nothing(cli, db):
    first = cli("covariates", "import", "--source", "fear_greed", FEAR_GREED, "--db", db)
    assert first.code == 0, first.err
    assert "fear_greed: 2370 values read, 2370 new" in first.out
    assert "vix: 1923 values read, 1923 new" in cli("covariates", "import", "--source", "vix",
                                                     VIX, "--db", db).out
    assert "2370 values read, 0 new" in cli("covariates", "import", "--source", "fear_greed",
                                            FEAR_GREED, "--db", db).out
    fear = stored(db, "fear_greed")
    assert fear["ts"].iloc[0] == parse_time("2018-02-01") and fear["value"].iloc[0] == 30
    assert (fear["published_ms"] == fear["ts"]).all()
    vix = stored(db, "vix")
    assert vix["published_ms"].iloc[0] == parse_time("2017-01-03T21:15Z")  # winter: EST


def test_cboes_own_format_stores_the_same_values(cli, db, tmp_path):
    with gzip.open(VIX) as handle:
        shared = pd.read_csv(handle)
    result = cli("covariates", "import", "--source", "vix", cboe_file(tmp_path / "VIX_History"
                                                                      ".csv", shared), "--db", db)
    assert result.code == 0, result.err
    vix = stored(db, "vix")
    assert vix["ts"].tolist() == shared["timestamp"].tolist()
    assert vix["value"].tolist() == shared["close"].tolist()


def test_list_as_a_table_and_as_json(cli, db):
    CandleStore(db).close()  # a store without covariates
    assert "no covariates stored" in cli("covariates", "list", "--db", db).out
    cli("covariates", "import", "--source", "vix", VIX, "--db", db)
    shown = cli("covariates", "list", "--db", db)
    assert shown.code == 0
    assert "vix" in shown.out and "1,923" in shown.out and "2024-07-31 20:15" in shown.out
    [row] = json.loads(cli("covariates", "list", "--db", db, "--format", "json").out)
    assert row == {"name": "vix", "scope": "", "source": "cboe", "rows": 1923,
                   "first": parse_time("2017-01-03"), "last": parse_time("2024-07-31"),
                   "published": parse_time("2024-07-31T20:15Z")}


@pytest.mark.parametrize(("row", "fragments"), [
    ("1600000000000,abc,Fear", ["row 1001: value 'abc' is not a number"]),
    ("1600000000,50,Fear", ["row 1001: time 1600000000", "not 00:00 UTC", "milliseconds"]),
    ("4102444800000,50,Fear", ["row 1001: dated after now"]),
    ("1600041600000,inf,Fear", ["row 1001: value is not a finite number"]),
    ("1600041600000,500,Greed", ["row 1001: value outside 0..100"]),  # an index of 0 to 100
    ("1600041600000,-5,Fear", ["row 1001: value outside 0..100"]),
])
def test_a_bad_row_in_the_middle_leaves_the_store_as_it_was(cli, db, tmp_path, row, fragments):
    cli("covariates", "import", "--source", "vix", VIX, "--db", db)
    with gzip.open(FEAR_GREED, "rt") as handle:
        lines = handle.read().splitlines()
    bad = tmp_path / "fear_greed.csv"
    bad.write_text("\n".join([*lines[:1001], row, *lines[1001:]]) + "\n")
    with CandleStore(db, read_only=True) as store:
        before = table.listing(store)
    assert_one_line_error(cli("covariates", "import", "--source", "fear_greed", bad, "--db", db),
                          "fear_greed.csv: ", *fragments)
    with CandleStore(db, read_only=True) as store:
        pd.testing.assert_frame_equal(table.listing(store), before)


def test_bad_input_is_one_line_and_exit_2(cli, db, tmp_path):
    cboe = tmp_path / "VIX_History.csv"
    cboe.write_text("DATE,OPEN,HIGH,LOW,CLOSE\n01/02/1990,17.24,17.24,17.24,17.24\n"
                    "1990-01-03,18.19,18.19,18.19,18.19\n")
    fake, cut = tmp_path / "fake.csv.gz", tmp_path / "cut.csv.gz"
    fake.write_text("x\n")
    cut.write_bytes(VIX.read_bytes()[:2000])
    cases = [
        (["--source", "sentiment", VIX], ["unknown --source 'sentiment'", "fear_greed or vix"]),
        (["--source", "vix", fake], ["fake.csv.gz: not a whole gzip file"]),
        (["--source", "vix", cut], ["cut.csv.gz: not a whole gzip file"]),
        (["--source", "vix", tmp_path / "none.csv"], ["no such file", "none.csv"]),
        (["--source", "vix", FEAR_GREED], ["missing column(s) close"]),
        (["--source", "vix", cboe], ["row 2: date '1990-01-03' is not MM/DD/YYYY"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(cli("covariates", "import", *args, "--db", db), *fragments)
    assert_one_line_error(cli("covariates", "list", "--db", db, "--format", "xml"),
                          "unknown --format 'xml'")
