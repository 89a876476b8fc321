"""Convert recurrent-layer weights between PyTorch state dicts and seqclf parameter pytrees.

PyTorch's ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` store, for layer ``k`` and direction ``d``
(``d`` is ``""`` forward or ``"_reverse"`` backward)::

    weight_ih_l{k}{d}: (G*H, F)    weight_hh_l{k}{d}: (G*H, H)
    bias_ih_l{k}{d}:   (G*H,)      bias_hh_l{k}{d}:   (G*H,)

with the gates stacked in the same order seqclf uses (G = 1 for the RNN, 4 for the LSTM in the
order i, f, g, o, 3 for the GRU in the order r, z, n). seqclf keeps the weights transposed, ready
for ``x @ W`` (see ``seqclf.ops.recurrent``)::

    w_ih: (F, G*H)    w_hh: (H, G*H)    b_ih: (G*H,)    b_hh: (G*H,)

so converting is a transpose of the two weight matrices. torch is not needed: state-dict values
may be NumPy arrays or anything ``numpy.asarray`` accepts (torch tensors are detached first).
Only ``tanh`` simple RNNs and layers with biases are covered; an LSTM with ``proj_size > 0`` is
refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from seqclf.ops.recurrent import GATES, Params

__all__ = ["from_torch", "to_torch", "torch_keys", "stack_from_torch"]

_NAMES = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}


def _check_kind(kind: str) -> int:
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    return GATES[kind]


def torch_keys(layer: int = 0, reverse: bool = False) -> dict[str, str]:
    """PyTorch state-dict key for each seqclf parameter name of one layer and direction.

    Returns:
      e.g. ``{"w_ih": "weight_ih_l1_reverse", "w_hh": "weight_hh_l1_reverse", ...}`` for
      ``layer=1, reverse=True``.
    """
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {name: torch_name + suffix for name, torch_name in _NAMES.items()}


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _gate_hint(rows: int, hidden: int) -> str:
    if hidden <= 0 or rows % hidden:
        return ""
    kinds = [k for k, g in GATES.items() if g == rows // hidden]
    return f" (that is {rows // hidden} gates: a {kinds[0]} layer?)" if kinds else ""


def _check_shapes(kind: str, shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
    """Raise if the torch-layout shapes (rows = G*H) do not fit ``kind``'s gate count."""
    gates = GATES[kind]
    w_hh = shapes["w_hh"]
    if len(w_hh) != 2:
        raise ValueError(f"{where}: weight_hh must be 2-D (G*H, H), got shape {w_hh}")
    hidden = w_hh[1]
    rows = gates * hidden
    expected = {"w_ih": (rows, None), "w_hh": (rows, hidden), "b_ih": (rows,), "b_hh": (rows,)}
    for name, want in expected.items():
        got = tuple(shapes[name])
        if len(got) == len(want) and all(
            w is None or g == w for g, w in zip(got, want, strict=True)
        ):
            continue
        shown = tuple("F" if w is None else w for w in want)
        hint = _gate_hint(got[0], hidden) if got else ""
        raise ValueError(
            f"{where}: {_NAMES[name]} has shape {got}, expected {shown} for a {kind} layer "
            f"with G={gates} gates and H={hidden}{hint}"
        )


def from_torch(
    kind: str,
    state_dict: Mapping[str, Any],
    layer: int = 0,
    reverse: bool = False,
    *,
    dtype: Any = None,
) -> Params:
    """seqclf parameters of one layer and direction from a PyTorch RNN/LSTM/GRU state dict.

    Args:
      kind: ``"rnn"``, ``"lstm"`` or ``"gru"`` (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``).
      state_dict: maps ``weight_ih_l{layer}{_reverse}`` to (G*H, F), ``weight_hh_l...`` to
        (G*H, H), ``bias_ih_l...`` and ``bias_hh_l...`` to (G*H,); NumPy arrays or tensors.
        Other keys (other layers, directions) are ignored.
      layer: the layer index k in the key names.
      reverse: take the backward direction of a bidirectional module (the ``_reverse`` keys).
      dtype: parameter dtype; by default the state dict's.

    Returns:
      ``{"w_ih": (F, G*H), "w_hh": (H, G*H), "b_ih": (G*H,), "b_hh": (G*H,)}`` as JAX arrays,
      ready for ``seqclf.ops.simple_rnn`` / ``lstm`` / ``gru``.

    Raises:
      KeyError: a key is missing (the message lists the keys present).
      ValueError: unknown ``kind``, or shapes that do not fit its gate count.
    """
    _check_kind(kind)
    keys = torch_keys(layer, reverse)
    missing = [k for k in keys.values() if k not in state_dict]
    if missing:
        raise KeyError(
            f"from_torch({kind!r}, layer={layer}, reverse={reverse}): missing "
            f"{', '.join(missing)}; the state dict has {sorted(state_dict)}"
        )
    if f"weight_hr_l{layer}" + ("_reverse" if reverse else "") in state_dict:
        raise ValueError("from_torch: LSTMs with proj_size > 0 (weight_hr_*) are not supported")
    arrays = {name: _to_numpy(state_dict[key]) for name, key in keys.items()}
    _check_shapes(kind, {n: a.shape for n, a in arrays.items()}, f"from_torch({kind!r})")
    return {name: jnp.asarray(a.T if a.ndim == 2 else a, dtype=dtype) for name, a in arrays.items()}


def to_torch(
    kind: str, params: Mapping[str, Any], layer: int = 0, reverse: bool = False
) -> dict[str, np.ndarray]:
    """PyTorch state-dict entries of one layer and direction from seqclf parameters.

    Args:
      kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
      params: ``{"w_ih": (F, G*H), "w_hh": (H, G*H), "b_ih": (G*H,), "b_hh": (G*H,)}``.
      layer: the layer index k in the key names.
      reverse: name the entries for the backward direction (``_reverse`` keys).

    Returns:
      ``{"weight_ih_l{k}{_reverse}": (G*H, F), "weight_hh_l...": (G*H, H), "bias_ih_l...":
      (G*H,), "bias_hh_l...": (G*H,)}`` as new, writable NumPy arrays; merge the dicts of all
      layers and directions and load them with
      ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in entries.items()})``.

    Raises:
      KeyError: a parameter is missing.
      ValueError: unknown ``kind``, or shapes that do not fit its gate count.
    """
    _check_kind(kind)
    missing = [name for name in _NAMES if name not in params]
    if missing:
        raise KeyError(f"to_torch({kind!r}): params lack {missing}; they have {sorted(params)}")
    arrays = {name: np.asarray(params[name]) for name in _NAMES}
    arrays = {n: a.T if a.ndim == 2 else a for n, a in arrays.items()}
    _check_shapes(kind, {n: a.shape for n, a in arrays.items()}, f"to_torch({kind!r})")
    keys = torch_keys(layer, reverse)
    return {keys[name]: np.array(a, order="C") for name, a in arrays.items()}  # copies


def stack_from_torch(
    kind: str, state_dict: Mapping[str, Any], *, dtype: Any = None
) -> tuple[list[Params] | list[tuple[Params, Params]], bool]:
    """All layers of a PyTorch recurrent module, in the form ``recurrent_stack`` takes.

    Args:
      kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
      state_dict: the module's ``state_dict()`` (values as NumPy arrays or tensors).
      dtype: parameter dtype; by default the state dict's.

    Returns:
      ``(layers, bidirectional)``: one params dict per layer, or a ``(forward, backward)`` pair
      per layer when the module is bidirectional (it has ``_reverse`` keys), so that
      ``recurrent_stack(kind, layers, xs, lengths, bidirectional=bidirectional)`` matches the
      module with ``batch_first=True``.
    """
    _check_kind(kind)
    num_layers = 0
    while f"weight_ih_l{num_layers}" in state_dict:
        num_layers += 1
    if num_layers == 0:
        raise KeyError(
            f"stack_from_torch({kind!r}): no weight_ih_l0 in the state dict; it has "
            f"{sorted(state_dict)}"
        )
    bidirectional = "weight_ih_l0_reverse" in state_dict
    layers: list[Any] = []
    for k in range(num_layers):
        fwd = from_torch(kind, state_dict, k, dtype=dtype)
        if bidirectional:
            layers.append((fwd, from_torch(kind, state_dict, k, reverse=True, dtype=dtype)))
        else:
            layers.append(fwd)
    return layers, bidirectional
