"""Kept versions of a trained model, so that a retrained model never destroys the one it
replaces: ``MODEL/versions/NNNN/`` holds each version's model files and a ``version.json``
(``ModelVersion``); the serving version's files are also at ``MODEL/`` itself, where every
reader of models (predict, overview, the dashboard, ``models.load``) has always found them.

Which version serves is never stored apart from the files that serve: it is the version whose
``model.json`` is the one at the top. The manifest is what a reader loads and what is renamed
into place last, so the answer can never disagree with what is loaded, even after a crash
halfway through a save. Each version's manifest records its number (``training.version``, so a
loaded model says which version it is), which also keeps two versions of one model trained
twice alike from being the same file.
"""

import errno
import filecmp
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from volcast.config import describe
from volcast.errors import NotFound, VolcastError
from volcast.models.base import MANIFEST, WEIGHTS
from volcast.models.folder import read_manifest

VERSIONS, RECORD = "versions", "version.json"
KEEP_VERSIONS = 10
"""Versions kept per series and model (the serving one is kept too, however old): a version is
a copy of the model, a few hundred kB for the default LSTM."""


class Validation(BaseModel):
    """Where a version was scored: the newest ``days`` of each series, ``first`` (the earliest
    window start over the series) to ``last`` (the newest candle), open times in ms UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    days: float
    first: int
    last: int


class ModelVersion(BaseModel):
    """One kept version of a model saved for ``series`` (what it learned from). ``score``: its
    validation MAE (mean over the series it was scored on); a model saved by plain training has
    none. ``promoted``: it was made the serving model when it was saved (a rollback may serve
    any version later)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    number: int = Field(ge=1)
    model: str
    trained_at: int = Field(description="when it was saved, ms UTC")
    series: list[str]
    promoted: bool
    score: float | None = None
    validation: Validation | None = None


@dataclass(frozen=True)
class Promotion:
    """What a retraining did: the candidate's version number, whether it now serves, the
    validation MAE of the candidate and of the model serving before (None: there was none),
    both over the same series and window, and why, in one line."""

    model: str
    version: int
    promoted: bool
    candidate_score: float
    serving_score: float | None
    validation: Validation
    why: str


@dataclass(frozen=True)
class Versions:
    """The versions kept in one series' model folder (``folder`` is ``MODEL/``)."""

    folder: Path

    @property
    def base(self) -> Path:
        return self.folder / VERSIONS

    def path(self, number: int) -> Path:
        return self.base / f"{number:04d}"

    def numbers(self) -> list[int]:
        """Numbers of the kept versions, oldest first (folders only: a version being written
        aside is not one yet)."""
        if not self.base.exists():
            return []
        return sorted(int(p.name) for p in self.base.iterdir() if p.name.isdigit())

    def history(self) -> list[ModelVersion]:
        """Every kept version, oldest first."""
        return [read_record(self.path(n) / RECORD) for n in self.numbers()]

    def serving(self) -> int | None:
        """The number of the version at the top (the newest, should two be the same model);
        None: no model at the top, or one saved before versions were kept."""
        top = self.folder / MANIFEST
        if not top.exists():
            return None
        same = [n for n in self.numbers() if filecmp.cmp(self.path(n) / MANIFEST, top,
                                                         shallow=False)]
        return max(same, default=None)

    def add(self, write: Callable[[Path], None], record: ModelVersion) -> ModelVersion:
        """Keep the model files ``write`` puts into a folder (``Forecaster.save``) as version
        ``record.number`` (or the next free number, should another process have taken it
        meanwhile): written aside, then renamed into place."""
        self.base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving.", dir=self.base))
        write(staging)
        while True:
            _number_manifest(staging, record.number)
            write_record(staging / RECORD, record)
            try:
                staging.rename(self.path(record.number))
                return record
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                record = record.model_copy(update={"number": record.number + 1})

    def adopt(self) -> None:
        """A model at the top that is no kept version (saved before volcast kept versions)
        becomes one, so that the save about to replace it keeps it, as it keeps any other."""
        top = self.folder / MANIFEST
        if not top.exists() or self.serving() is not None:
            return
        try:
            series = read_manifest(self.folder)["training"].get("series", [])
        except VolcastError:
            return  # a damaged model is replaced, as before versions were kept
        adopted = self.add(lambda staging: _copy_model(self.folder, staging), ModelVersion(
            number=next_number([self]), model=self.folder.name,
            trained_at=top.stat().st_mtime_ns // 1_000_000, series=series, promoted=True))
        self.serve(adopted.number)  # the same model, now with its number

    def serve(self, number: int) -> None:
        """Version ``number``'s files to the top, the manifest renamed in last (stamped newer
        than the one it replaces, so ``Layout.version`` changes even within a clock tick)."""
        source = self.path(number)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", dir=self.folder.parent))
        try:
            _copy_model(source, staging)
            _stamp_newer(staging / MANIFEST, self.folder / MANIFEST)
            if not (source / WEIGHTS).exists():  # a model without weights leaves none
                (self.folder / WEIGHTS).unlink(missing_ok=True)
            for name in (WEIGHTS, MANIFEST):
                if (staging / name).exists():
                    (staging / name).replace(self.folder / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def prune(self) -> None:
        """Drop the oldest versions beyond ``KEEP_VERSIONS``, never the serving one."""
        serving = self.serving()
        for number in self.numbers()[:-KEEP_VERSIONS]:
            if number != serving:
                shutil.rmtree(self.path(number))

    def find(self, number: int, what: str) -> ModelVersion:
        """Version ``number``, or a one-line error listing the kept ones."""
        kept = self.numbers()
        if number not in kept:
            raise NotFound(f"no version {number} of {what}; kept: "
                           f"{', '.join(map(str, kept)) or 'none'}")
        return read_record(self.path(number) / RECORD)

    def previous(self, what: str) -> ModelVersion:
        """The version that served before the serving one: the newest promoted version older
        than it (candidates that were not promoted never served)."""
        serving = self.serving()
        earlier = [v for v in self.history()
                   if v.promoted and (serving is None or v.number < serving)]
        if not earlier:
            raise VolcastError(f"{what} has no promoted version before the serving one "
                               f"({serving or 'none'}); choose one with --to "
                               "(see `volcast models list`)")
        return earlier[-1]


def next_number(folders: list[Versions]) -> int:
    """One number for a model saved into several series' folders: past every kept one."""
    return 1 + max((n for v in folders for n in v.numbers()), default=0)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def read_record(path: Path) -> ModelVersion:
    """A ``version.json`` (models folders are input like any other: a damaged one is a
    one-line error naming it)."""
    try:
        return ModelVersion.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise VolcastError(f"{path.parent} is a model version without {RECORD}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VolcastError(f"{path} is damaged ({str(exc)[:120]})") from None
    except ValidationError as exc:
        raise VolcastError(f"{path}: {describe(exc)}") from None


def write_record(path: Path, record: ModelVersion) -> None:
    path.write_text(record.model_dump_json(indent=2))


def _copy_model(source: Path, target: Path) -> None:
    for name in (WEIGHTS, MANIFEST):
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)


def _number_manifest(folder: Path, number: int) -> None:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.setdefault("training", {})["version"] = number
    path.write_text(json.dumps(manifest, indent=2))


def _stamp_newer(path: Path, than: Path) -> None:
    """Give ``path`` an mtime later than ``than``'s: file times move in clock ticks of a few
    ms, and a model served twice within one tick must still read as a new version."""
    stamp = time.time_ns()
    if than.exists():
        stamp = max(stamp, than.stat().st_mtime_ns + 1)
    os.utime(path, ns=(stamp, stamp))
