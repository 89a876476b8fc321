"""Export a trained predictor as serialized StableHLO (``jax.export``), runnable without seqclf's
model code by ``seqclf.exported.load``.

An export directory holds:

    model.json            format, version, classes, text settings (max_len, truncating, buckets),
                          the file of each bucket, the platforms, the jax/seqclf versions
    vocabulary.json       the training vocabulary (``seqclf.Vocabulary.save``)
    params.npz            the parameters, as the flat list of arrays the functions take
    probabilities_T{T}.stablehlo
                          for each length bucket T: ``(params, tokens (b, T) int32,
                          lengths (b,) int32) -> probabilities (b, C) float32``, with a symbolic
                          batch dimension b (``Exported.serialize()``)

The parameters are an argument, not constants baked into each function, so they are stored once
for all the buckets (an IMDB model's bag of bigrams alone is 67 MB).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from seqclf.model import build_classifier

if TYPE_CHECKING:
    from seqclf.predict import Predictor

FORMAT = "seqclf.exported"
VERSION = 1
SETTINGS = "model.json"
VOCABULARY = "vocabulary.json"
PARAMS = "params.npz"


def bucket_file(length: int) -> str:
    """Name of the serialized function of the bucket of padded length ``length``."""
    return f"probabilities_T{length}.stablehlo"


def export_predictor(
    predictor: Predictor, out_dir: str | Path, platforms: Sequence[str] | None = None
) -> Path:
    """Write ``predictor`` as a ``jax.export`` artifact (see the module docstring).

    Args:
      predictor: a ``seqclf.Predictor`` (e.g. ``seqclf.load(run)``).
      out_dir: the directory to write (created; files of an earlier export there are replaced).
      platforms: the platforms the functions are lowered for, e.g. ``["cpu", "cuda"]``; None:
        JAX's default backend here. A function lowered for several platforms picks the one it
        runs on.

    Returns:
      ``out_dir``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    model = build_classifier(predictor.config)
    leaves, treedef = jax.tree_util.tree_flatten(predictor._params)

    def probabilities(leaves: list[jax.Array], tokens: jax.Array, lengths: jax.Array):
        params = jax.tree_util.tree_unflatten(treedef, leaves)
        return jax.nn.softmax(model.apply({"params": params}, tokens, lengths), axis=-1)

    (batch,) = jax.export.symbolic_shape("b")
    param_specs = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    lengths_spec = jax.ShapeDtypeStruct((batch,), jnp.int32)
    serialized = {}
    for length in predictor.buckets:
        tokens_spec = jax.ShapeDtypeStruct((batch, length), jnp.int32)
        exported = jax.export.export(jax.jit(probabilities), platforms=platforms)(
            param_specs, tokens_spec, lengths_spec
        )
        serialized[length] = exported.serialize()
    out_dir.mkdir(parents=True, exist_ok=True)
    for length, blob in serialized.items():
        (out_dir / bucket_file(length)).write_bytes(blob)
    np.savez(out_dir / PARAMS, *[np.asarray(x) for x in leaves])
    predictor.vocabulary.save(out_dir / VOCABULARY)
    from seqclf import __version__

    settings = {
        "format": FORMAT,
        "version": VERSION,
        "classes": predictor.classes,
        "max_len": predictor.max_len,
        "truncating": predictor.truncating,
        "buckets": list(predictor.buckets),
        "functions": {str(length): bucket_file(length) for length in predictor.buckets},
        "num_params": len(leaves),
        "platforms": list(platforms) if platforms else [jax.default_backend()],
        "jax_version": jax.__version__,
        "seqclf_version": __version__,
        "model_config": predictor.config.to_dict(),
    }
    (out_dir / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out_dir
