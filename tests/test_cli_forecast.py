"""train / predict / backtest as a user runs them."""

import json

import pandas as pd
import pytest

from volcast.data.formats import read_candles, write_candles
from volcast.data.sample import sample_file

TINY_FLAGS = ["--lookback", "48", "--horizon", "6", "--hidden-size", "8", "--epochs", "2"]


@pytest.fixture(scope="module")
def csv_file(btc, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "BTC_USDT-1h.csv"
    write_candles(btc.iloc[-24 * 90:], path)
    return path


def test_train_then_predict_in_every_format(cli, csv_file, tmp_path):
    model = tmp_path / "model"
    trained = cli("train", "--model", "lstm", "--csv", csv_file, "--out", model, *TINY_FLAGS)
    assert trained.code == 0, trained.err
    settings = json.loads((model / "model.json").read_text())["settings"]
    assert settings["hidden_size"] == 8 and settings["lookback"] == 48
    as_json = cli("predict", "--model-dir", model, "--csv", csv_file, "--format", "json")
    rows = json.loads(as_json.out)
    assert len(rows) == 6 and all(r["q10"] <= r["q50"] <= r["q90"] for r in rows)
    as_csv = cli("predict", "--model-dir", model, "--csv", csv_file, "--format", "csv")
    assert as_csv.out.splitlines()[0] == "unique_id,ds,q10,q50,q90,unit"
    assert as_csv.out.splitlines()[1].endswith(",BTC")  # the file is named BTC_USDT-1h
    table = cli("predict", "--model-dir", model, "--csv", csv_file)
    assert "2024-08-01 05:00" in table.out


def test_train_from_the_store_with_a_config_file(cli, db, tmp_path):
    cli("import", sample_file(), "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--db", db)
    config = tmp_path / "volcast.toml"
    config.write_text("[model.lstm]\nlookback = 48\nhorizon = 6\nhidden_size = 8\nepochs = 1\n")
    result = cli("train", "--model", "lstm", "-e", "binance", "-s", "BTC/USDT", "--db", db,
                 "--config", config, "--hidden-size", "12", "--out", tmp_path / "m")
    assert result.code == 0, result.err
    settings = json.loads((tmp_path / "m" / "model.json").read_text())["settings"]
    assert settings["hidden_size"] == 12 and settings["lookback"] == 48  # flag beats file


def test_backtest_compares_models_and_writes_protocol_files(cli, csv_file, tmp_path):
    out = tmp_path / "bt.csv"
    result = cli("backtest", "--model", "seasonal_naive_24", "--model", "hour_of_day_median_7d",
                 "--csv", csv_file, "--test-days", "10", "--out", out)
    assert result.code == 0, result.err
    for name in ("seasonal_naive_24", "hour_of_day_median_7d", "hour_of_week_median_4w"):
        assert name in result.out
        predictions = pd.read_csv(tmp_path / f"bt.{name}.csv")
        assert list(predictions.columns) == ["origin", "timestamp", "step", "y_true", "y_pred",
                                             "q10", "q90"]
        assert len(predictions) == 10 * 24
        scores = json.loads((tmp_path / f"bt.{name}.scores.json").read_text())
        assert scores["scores"]["overall"]["n"] == 240


def test_single_model_backtest_writes_exactly_the_given_file(cli, csv_file, tmp_path):
    out = tmp_path / "preds.csv"
    result = cli("backtest", "--model", "lstm", "--csv", csv_file, "--test-days", "3",
                 "--lookback", "48", "--hidden-size", "8", "--epochs", "1", "--out", out)
    assert result.code == 0, result.err
    assert len(pd.read_csv(out)) == 3 * 24


def test_a_global_backtest_learns_from_more_files(cli, csv_file, tmp_path):
    other = tmp_path / "ETH_USDT-1h.csv"
    write_candles(read_candles(sample_file(pair="ETH_USDT")).iloc[-24 * 90:], other)
    result = cli("backtest", "--model", "lstm", "--csv", csv_file, "--also-csv", other,
                 "--test-days", "3", "--lookback", "48", "--hidden-size", "8", "--epochs", "1",
                 "--out", tmp_path / "p.csv")
    assert result.code == 0, result.err
    scores = json.loads((tmp_path / "p.scores.json").read_text())
    assert scores["trained_on"] == ["BTC_USDT-1h", "ETH_USDT-1h"]


def assert_error(result, fragment):
    assert result.code == 2, result.out + result.err
    assert result.err.count("\n") == 1 and fragment in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(("args", "fragment"), [
    (["train", "--model", "lstm", "--out", "m", *TINY_FLAGS], "give either --csv"),
    (["train", "--model", "arima", "--csv", "x.csv", "--out", "m"], "unknown model 'arima'"),
    (["train", "--model", "lstm", "--csv", "x.csv", "--out", "m", "--quantiles", "0.1,abc"],
     "--quantiles: 'abc' is not a number"),
    (["train", "--model", "lstm", "--csv", "x.csv", "--out", "m", "--layers", "9"],
     "setting 'lstm.layers'"),
    (["predict", "--model-dir", "nowhere", "--csv", "x.csv"], "not a volcast model folder"),
    (["predict", "--model-dir", "nowhere", "--csv", "x.csv", "--format", "xml"],
     "unknown --format 'xml'"),
    (["backtest", "--model", "lstm", "--csv", "x.csv", "--out", "o.csv", "--cutoff", "soon"],
     "bad date 'soon'"),
    # two sources: the files were used and the stored series passed over in silence
    (["train", "--model", "lstm", "--csv", "x.csv", "-e", "binance", "-s", "BTC/USDT", "--out",
      "m"], "not both"),
    (["backtest", "--model", "seasonal_naive_24", "--csv", "x.csv", "-e", "binance", "-s",
      "ETH/USDT", "--out", "o.csv"], "not both"),
    (["backtest", "--model", "seasonal_naive_24", "--csv", "x.csv", "-e", "binance", "--all",
      "--out", "o.csv"], "not both"),
])
def test_bad_forecasting_input(cli, args, fragment):
    assert_error(cli(*args), fragment)


def test_backtest_config_section_is_validated(cli, csv_file, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[backtest]\nhorizon = 0\n")
    assert_error(cli("backtest", "--model", "seasonal_naive_24", "--csv", csv_file, "--out",
                     tmp_path / "o.csv", "--config", config), "setting 'backtest.horizon'")


def write(tmp_path, text: str):
    path = tmp_path / "volcast.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("config", "flags", "fragment"), [
    ("[model.lstm]\nseed = -1\n", [], "setting 'lstm.seed': Input should be greater than or "
                                      "equal to 0"),
    ("", ["--seed", "-1"], "setting 'lstm.seed'"),
    ("[model.lstm]\ndropout = nan\n", [], "setting 'lstm.dropout'"),
    ("[model.lstm]\nlearning_rate = inf\n", [], "setting 'lstm.learning_rate'"),
    ("[model.foo]\nx = 1\n", [], "unknown table [model.foo]; the models are lstm, ensemble, "
                                 "mstl, seasonal_naive_24"),
    ("[fetch]\nbackoff_s = nan\n", [], "setting 'fetch.backoff_s': Input should be a finite "
                                       "number"),
])
def test_bad_settings_in_a_config_file_or_flags_are_one_line(cli, csv_file, tmp_path, config,
                                                             flags, fragment):
    result = cli("train", "--model", "lstm", "--csv", csv_file, "--out", tmp_path / "m",
                 "--config", write(tmp_path, config), *TINY_FLAGS, *flags)
    assert_error(result, fragment)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("season_days", "fragment"), [
    ("[nan]", "setting 'mstl.season_days.0': Input should be a finite number"),
    ("[-1]", "setting 'mstl.season_days.0': Input should be greater than 0"),
    ("[inf]", "setting 'mstl.season_days.0'"),
    ("[]", "setting 'mstl.season_days'"),
])
def test_bad_mstl_seasons_are_one_line(cli, csv_file, tmp_path, season_days, fragment):
    config = write(tmp_path, f"[model.mstl]\nseason_days = {season_days}\n")
    assert_error(cli("backtest", "--model", "mstl", "--csv", csv_file, "--out",
                     tmp_path / "o.csv", "--test-days", "1", "--config", config), fragment)


def test_a_config_that_is_a_folder_is_one_line(cli, csv_file, tmp_path):
    assert_error(cli("train", "--model", "lstm", "--csv", csv_file, "--out", tmp_path / "m",
                     "--config", tmp_path), f"cannot read config file {tmp_path}: Is a directory")


def test_train_refuses_an_existing_file_as_out_before_training(cli, csv_file, tmp_path,
                                                               monkeypatch):
    from volcast.models.lstm.forecaster import LSTMForecaster

    monkeypatch.setattr(LSTMForecaster, "fit", lambda *a: pytest.fail("trained anyway"))
    (tmp_path / "taken").write_text("keep me")
    assert_error(cli("train", "--model", "lstm", "--csv", csv_file, "--out", tmp_path / "taken",
                     *TINY_FLAGS), "is a file; give a folder for the model")
    assert (tmp_path / "taken").read_text() == "keep me"


def test_an_edited_model_folder_is_refused_with_exit_2(cli, csv_file, tmp_path):
    model = tmp_path / "model"
    assert cli("train", "--model", "lstm", "--csv", csv_file, "--out", model, *TINY_FLAGS
               ).code == 0
    manifest = json.loads((model / "model.json").read_text())
    manifest["state"]["net"]["layers"] = 1_000_000
    (model / "model.json").write_text(json.dumps(manifest))
    assert_error(cli("predict", "--model-dir", model, "--csv", csv_file),
                 "state.net.layers is 1000000; the settings ask for 1")


# -- covariates: from the store into training, forecasts and backtests (issue 16) -----------
@pytest.fixture
def covariate_db(cli, db):
    """BTC/USDT 1h and the Fear & Greed index (the bundled sample's copy) in one store."""
    from volcast.data.sample import sample_dir

    cli("import", sample_file(), "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--db", db)
    imported = cli("covariates", "import", "--source", "fear_greed",
                   sample_dir() / "exogenous" / "fear_greed.csv.gz", "--db", db)
    assert imported.code == 0, imported.err
    return db


def test_a_model_trained_with_a_covariate_reads_it_from_the_store(cli, covariate_db, tmp_path):
    model = tmp_path / "m"
    btc = ["-e", "binance", "-s", "BTC/USDT", "--db", covariate_db]
    trained = cli("train", "--model", "lstm", *btc, "--covariates", "fear_greed",
                  "--out", model, *TINY_FLAGS, "--train-days", "30")
    assert trained.code == 0, trained.err
    assert json.loads((model / "model.json").read_text())["settings"]["covariates"] == \
        ["fear_greed"]
    stored = cli("predict", "--model", "lstm", *btc, "--format", "json")
    from_folder = cli("predict", "--model-dir", model, *btc, "--format", "json")
    assert stored.code == from_folder.code == 0, stored.err + from_folder.err
    assert json.loads(stored.out) == json.loads(from_folder.out)
    # the candles alone (a file, no store holding the index) are refused in one line
    csv = tmp_path / "BTC_USDT-1h.csv"
    cli("export", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--db", covariate_db,
        "--out", csv)
    refused = cli("predict", "--model-dir", model, "--csv", csv, "--db", tmp_path / "none.db")
    assert refused.code == 2 and "fear_greed" in refused.err
    assert len(refused.err.strip().splitlines()) == 1


def test_a_backtest_with_a_covariate_names_it_and_an_unknown_one_is_one_line(cli, covariate_db):
    btc = ["-e", "binance", "-s", "BTC/USDT", "--db", covariate_db]
    done = cli("backtest", "--model", "lstm", *btc, "--covariates", "fear_greed", *TINY_FLAGS,
               "--train-days", "30", "--test-days", "3")
    assert done.code == 0, done.err
    unknown = cli("backtest", "--model", "lstm", *btc, "--covariates", "moon_phase",
                  *TINY_FLAGS, "--test-days", "3")
    assert unknown.code == 2 and "unknown covariate 'moon_phase'" in unknown.err
    missing = cli("backtest", "--model", "lstm", *btc, "--covariates", "vix", *TINY_FLAGS,
                  "--test-days", "3")
    assert missing.code == 2 and "covariates import --source vix" in missing.err


@pytest.mark.parametrize("args, fragment", [
    (["--model", "transformer", "--hidden-size", "8"], "--hidden-size is not a setting of "
                                                       "transformer"),
    (["--model", "mstl", "--epochs", "3"], "--epochs is not a setting of mstl"),
])
def test_a_flag_no_chosen_model_has_is_refused(cli, csv_file, tmp_path, args, fragment):
    result = cli("backtest", *args, "--csv", csv_file, "--out", tmp_path / "bt.csv")
    assert result.code == 2 and fragment in result.err
