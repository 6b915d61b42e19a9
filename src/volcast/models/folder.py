"""A saved model folder read as untrusted input: everything is checked before it is used.

``models.load`` reads a folder in this order, so that nothing is allocated from a value that
was not checked first:
1. ``read_manifest``: ``model.json`` (at most ``MAX_MANIFEST_BYTES``), its fields' types;
2. the settings, validated by the model's pydantic ``Settings`` (their bounds);
3. ``Forecaster.check_state``: the saved state against the settings and sane bounds, which
   also says which tensors, of which shapes, the weights must hold;
4. ``read_weights``: the safetensors header (names, dtypes, shapes, the metadata the weights
   were saved with) is compared with that before a tensor is read, then every tensor must be
   finite.
Any problem is one ``VolcastError`` line naming the folder and the bad field.
"""

import json
import math
from pathlib import Path
from typing import Any

from volcast.errors import VolcastError
from volcast.models.base import FORMAT_VERSION, MANIFEST, METADATA_KEY, WEIGHTS

MAX_MANIFEST_BYTES = 256 * 2**20
"""The largest model.json read (an ensemble's LightGBM trees are its bulk)."""


def read_manifest(directory: Path) -> dict[str, Any]:
    """The saved model's manifest, its fields of the right types, or a one-line error saying
    what is wrong with the folder."""
    path = directory / MANIFEST
    if not path.is_file():
        raise VolcastError(f"{directory} is not a volcast model folder (no {MANIFEST})")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise VolcastError(f"{path} is larger than {MAX_MANIFEST_BYTES // 2**20} MiB; not a "
                           "volcast model manifest")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise VolcastError(f"{path} is damaged ({str(exc)[:120]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "volcast-model":
        raise VolcastError(f"{path} is not a volcast model manifest")
    version = manifest.get("format_version", 0)
    if not is_int(version):
        raise VolcastError(f"{path}: format_version must be a whole number, not {version!r}")
    if version > FORMAT_VERSION:
        raise VolcastError(f"{directory} was saved by a newer volcast; upgrade to load it")
    for field, kind in (("model", str), ("settings", dict), ("state", dict),
                        ("training", dict)):
        value = manifest.setdefault(field, kind())
        if not isinstance(value, kind):
            raise VolcastError(f"{path}: '{field}' must be a {_KINDS[kind]}, not "
                               f"{type(value).__name__}")
    return manifest


_KINDS = {str: "string", dict: "table"}


def read_weights(directory: Path, shapes: dict[str, tuple[int, ...]],
                 metadata: dict[str, Any]) -> dict[str, Any]:
    """The float32 tensors named in ``shapes`` (exactly those, of exactly those shapes), after
    the file's header agrees with them and the metadata the weights were saved with agrees with
    ``metadata`` (what the manifest says; folders saved before volcast wrote metadata have
    none). Every tensor must be finite. No shapes: the folder must hold no weights."""
    path = directory / WEIGHTS
    if not shapes:
        if path.exists():
            raise VolcastError(f"{directory}: this model keeps no weights, yet {WEIGHTS} is there")
        return {}
    if not path.is_file():
        raise VolcastError(f"{directory}: {WEIGHTS} is missing")
    import torch
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as weights:
            _check_header(path, weights, shapes, metadata)
            tensors = {name: weights.get_tensor(name) for name in shapes}
    except (SafetensorError, OSError) as exc:
        raise VolcastError(f"{directory}: damaged weights ({str(exc)[:160]})") from None
    for name, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            raise VolcastError(f"{path}: tensor '{name}' holds NaN or infinite values")
    return tensors


def _check_header(path: Path, weights: Any, shapes: dict[str, tuple[int, ...]],
                  metadata: dict[str, Any]) -> None:
    names = set(weights.keys())
    missing, extra = sorted(set(shapes) - names), sorted(names - set(shapes))
    if missing or extra:
        which = f"lacks '{missing[0]}'" if missing else f"holds an unexpected '{extra[0]}'"
        raise VolcastError(f"{path} does not match model.json: it {which} "
                           f"({len(missing)} missing, {len(extra)} unexpected tensors)")
    for name, shape in shapes.items():
        tensor = weights.get_slice(name)
        if tuple(tensor.get_shape()) != tuple(shape) or tensor.get_dtype() != "F32":
            raise VolcastError(f"{path} does not match model.json: tensor '{name}' is "
                               f"{tensor.get_dtype()} {tuple(tensor.get_shape())}; the "
                               f"manifest needs F32 {tuple(shape)}")
    saved = (weights.metadata() or {}).get(METADATA_KEY)
    if saved is None:
        return  # saved before volcast wrote its metadata (0.1.0)
    try:
        saved_with = json.loads(saved)
    except json.JSONDecodeError:
        raise VolcastError(f"{path}: damaged metadata") from None
    expected = json.loads(json.dumps(metadata))
    if not isinstance(saved_with, dict):
        raise VolcastError(f"{path}: damaged metadata")
    for key in sorted(set(expected) | set(saved_with)):
        if saved_with.get(key) != expected.get(key):
            raise VolcastError(f"{path.parent}: model.json says {key} = "
                               f"{brief(expected.get(key))}, but the weights were saved with "
                               f"{brief(saved_with.get(key))}")


def brief(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int(value: Any) -> bool:
    """A whole JSON number (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite JSON number (not a boolean)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
