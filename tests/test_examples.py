"""The examples run end to end on a tiny budget and return and print well-formed results."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(out: str) -> dict[str, list[str]]:
    """The printed table below its header line: row name (the first 13 characters) -> cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    return {line[:13].strip(): line[13:].split() for line in lines[start + 1 :] if line.strip()}


@pytest.mark.parametrize("name", ["long_memory", "timeseries"])
def test_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _load(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--steps" in out


def test_long_memory_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    # One model: each compiles its own train step, and compilation is most of the run time.
    argv = "--steps 3 --seq-len 10 --hidden 4 --batch 8 --test-size 32 --kinds lstm".split()
    result = _load("long_memory").main(argv)
    assert set(result) == {"baseline_mse", "models", "config"}
    assert set(result["models"]) == {"lstm"}
    assert 0 < result["baseline_mse"] < 1
    for numbers in result["models"].values():
        assert set(numbers) == {"test_mse", "last_train_mse", "seconds"}
        assert all(math.isfinite(v) for v in numbers.values())
    assert result["config"]["steps"] == 3 and result["config"]["seq_len"] == 10
    table = _table(capsys.readouterr().out)
    assert list(table) == ["predict 1", "lstm"]
    assert [len(cells) for cells in table.values()] == [2, 3]
    assert float(table["predict 1"][0]) == pytest.approx(result["baseline_mse"], abs=1e-4)
    assert float(table["lstm"][0]) == pytest.approx(result["models"]["lstm"]["test_mse"], abs=1e-4)


def test_timeseries_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    argv = (
        "--steps 3 --seq-len 20 --hidden 4 --batch 8 --train-size 16 --test-size 8 "
        "--warmup 4 --ar-order 3 --kinds gru"
    ).split()
    result = _load("timeseries").main(argv)
    assert set(result) == {"noise_floor", "baselines", "models", "config"}
    assert set(result["baselines"]) == {"repeat last", "AR(3)"}
    assert set(result["models"]) == {"gru"}
    assert all(math.isfinite(v) and v > 0 for v in result["baselines"].values())
    assert all(math.isfinite(v) for v in result["models"]["gru"].values())
    assert result["noise_floor"] == pytest.approx(0.01)
    table = _table(capsys.readouterr().out)
    assert list(table) == ["noise floor", "repeat last", "AR(3)", "gru"]
    assert [len(cells) for cells in table.values()] == [2, 2, 2, 3]
    assert float(table["repeat last"][1]) == 1.0
    assert float(table["gru"][0]) == pytest.approx(result["models"]["gru"]["test_mse"], abs=1e-4)


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        _load("long_memory").main(["--seq-len", "1"])
    with pytest.raises(SystemExit):
        _load("timeseries").main(["--ar-order", "30", "--warmup", "4"])
