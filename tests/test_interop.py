"""seqclf.interop: PyTorch state dicts <-> seqclf params; against torch itself when installed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ops
from seqclf.interop import from_torch, stack_from_torch, to_torch, torch_keys

KINDS = ("rnn", "lstm", "gru")


def _torch_layer(kind: str, features: int, hidden: int, rng, layer=0, reverse=False):
    """A fake PyTorch state-dict fragment (NumPy float32) for one layer and direction."""
    rows = ops.GATES[kind] * hidden
    keys = torch_keys(layer, reverse)
    shapes = {"w_ih": (rows, features), "w_hh": (rows, hidden), "b_ih": (rows,), "b_hh": (rows,)}
    return {keys[n]: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}


def test_torch_keys() -> None:
    assert torch_keys() == {
        "w_ih": "weight_ih_l0",
        "w_hh": "weight_hh_l0",
        "b_ih": "bias_ih_l0",
        "b_hh": "bias_hh_l0",
    }
    assert torch_keys(2, reverse=True)["b_hh"] == "bias_hh_l2_reverse"


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(kind: str) -> None:
    rng = np.random.default_rng(0)
    gates = ops.GATES[kind]
    state = {
        **_torch_layer(kind, 3, 4, rng),
        **_torch_layer(kind, 3, 4, rng, reverse=True),
        **_torch_layer(kind, 8, 4, rng, layer=1),
        **_torch_layer(kind, 8, 4, rng, layer=1, reverse=True),
    }
    params = from_torch(kind, state, layer=1, reverse=True)
    assert {k: v.shape for k, v in params.items()} == {
        "w_ih": (8, gates * 4),
        "w_hh": (4, gates * 4),
        "b_ih": (gates * 4,),
        "b_hh": (gates * 4,),
    }
    np.testing.assert_array_equal(params["w_ih"], state["weight_ih_l1_reverse"].T)
    np.testing.assert_array_equal(params["b_hh"], state["bias_hh_l1_reverse"])
    # torch -> seqclf -> torch, for every layer and direction.
    back = {}
    for layer in (0, 1):
        for reverse in (False, True):
            back.update(to_torch(kind, from_torch(kind, state, layer, reverse), layer, reverse))
    assert sorted(back) == sorted(state)
    for key, value in state.items():
        assert isinstance(back[key], np.ndarray) and back[key].flags.writeable
        np.testing.assert_array_equal(back[key], value)
    # seqclf -> torch -> seqclf, starting from init_params.
    params = ops.init_params(jax.random.key(0), kind, 5, 6)
    again = from_torch(kind, to_torch(kind, params))
    for name in params:
        np.testing.assert_array_equal(again[name], params[name])
    assert from_torch(kind, to_torch(kind, params), dtype=jnp.bfloat16)["w_hh"].dtype == (
        jnp.bfloat16
    )
    # A whole stack.
    layers, bidirectional = stack_from_torch(kind, state)
    assert bidirectional and len(layers) == 2
    np.testing.assert_array_equal(layers[1][1]["w_ih"], state["weight_ih_l1_reverse"].T)
    np.testing.assert_array_equal(layers[0][0]["w_hh"], state["weight_hh_l0"].T)


def test_converted_params_run() -> None:
    rng = np.random.default_rng(1)
    params = from_torch("gru", _torch_layer("gru", 3, 4, rng))
    ys, h = ops.gru(params, jnp.ones((2, 5, 3)), jnp.array([5, 2]))
    assert ys.shape == (2, 5, 4) and h.shape == (2, 4)


def test_errors() -> None:
    rng = np.random.default_rng(2)
    state = _torch_layer("lstm", 3, 4, rng)
    with pytest.raises(
        KeyError, match=r"missing weight_ih_l1, .*the state dict has \['bias_hh_l0'"
    ):
        from_torch("lstm", state, layer=1)
    with pytest.raises(KeyError, match="missing weight_ih_l0_reverse"):
        from_torch("lstm", state, reverse=True)
    del state["bias_ih_l0"]
    with pytest.raises(KeyError, match=r"missing bias_ih_l0; the state dict has"):
        from_torch("lstm", state)
    with pytest.raises(
        ValueError, match=r"kind must be one of \['gru', 'lstm', 'rnn'\], got 'gpt'"
    ):
        from_torch("gpt", state)
    with pytest.raises(ValueError, match="kind must be one of"):
        to_torch("LSTM", {})
    # LSTM weights (4 gates) read as a GRU (3 gates).
    with pytest.raises(
        ValueError, match=r"weight_ih has shape \(16, 3\), expected \(12, 'F'\).*4 gates: a lstm"
    ):
        from_torch("gru", _torch_layer("lstm", 3, 4, rng))
    # GRU params written as an LSTM.
    gru = ops.init_params(jax.random.key(0), "gru", 3, 4)
    with pytest.raises(
        ValueError, match=r"to_torch\('lstm'\): weight_ih has shape \(12, 3\).*a gru"
    ):
        to_torch("lstm", gru)
    bad = _torch_layer("rnn", 3, 4, rng)
    bad["bias_hh_l0"] = bad["bias_hh_l0"][:3]
    with pytest.raises(ValueError, match=r"bias_hh has shape \(3,\), expected \(4,\)"):
        from_torch("rnn", bad)
    with pytest.raises(KeyError, match=r"params lack \['b_hh'\]"):
        to_torch("rnn", {k: v for k, v in gru.items() if k != "b_hh"})
    with pytest.raises(KeyError, match="no weight_ih_l0"):
        stack_from_torch("rnn", {})
    with pytest.raises(ValueError, match="proj_size"):
        from_torch("lstm", {**_torch_layer("lstm", 3, 4, rng), "weight_hr_l0": np.zeros((2, 4))})


# ---------------------------------------------------------------------------------------------
# Against PyTorch itself (skipped where torch is not installed, as in CI)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch(kind: str) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module_class = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    module = module_class(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    layers, bidirectional = stack_from_torch(kind, state)
    assert bidirectional and len(layers) == 2

    rng = np.random.default_rng(3)
    lengths = np.array([6, 3, 1, 5])
    xs = rng.normal(size=(4, 6, 3)).astype(np.float32)
    ys, states = jax.jit(ops.recurrent_stack, static_argnums=0, static_argnames="bidirectional")(
        kind, layers, jnp.asarray(xs), jnp.asarray(lengths), bidirectional=True
    )

    # PyTorch with padding: a packed sequence; padded outputs come back as zeros.
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(xs), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        out, final = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=6)
    np.testing.assert_allclose(np.asarray(ys), out.numpy(), rtol=0, atol=1e-5)
    # torch's h_n: (num_layers * 2, B, H), ordered layer 0 forward, layer 0 backward, layer 1 ...
    h_n = (final[0] if kind == "lstm" else final).numpy()
    ours = [ops.final_hidden(kind, s) for layer in states for s in layer]
    np.testing.assert_allclose(np.stack(ours), h_n, rtol=0, atol=1e-5)
    if kind == "lstm":
        c_n = np.stack([s[1] for layer in states for s in layer])
        np.testing.assert_allclose(c_n, final[1].numpy(), rtol=0, atol=1e-5)

    # Unpadded, and the other way: seqclf params loaded into a fresh torch module.
    other = module_class(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    converted = {}
    for k, (fwd, bwd) in enumerate(layers):
        converted.update(to_torch(kind, fwd, k))
        converted.update(to_torch(kind, bwd, k, reverse=True))
    other.load_state_dict({k: torch.from_numpy(v) for k, v in converted.items()})
    with torch.no_grad():
        out_full, _ = other(torch.from_numpy(xs))
    ys_full, _ = ops.recurrent_stack(kind, layers, jnp.asarray(xs), bidirectional=True)
    np.testing.assert_allclose(np.asarray(ys_full), out_full.numpy(), rtol=0, atol=1e-5)
