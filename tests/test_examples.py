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
    """The printed table below its header line, up to the first blank line: row name (the first
    13 characters) -> cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows[line[:13].strip()] = line[13:].split()
    return rows


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["long_memory", "timeseries"])
def test_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _load(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--steps" in out


def test_long_memory_tiny(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # One model: each compiles its own train step, and compilation is most of the run time.
    argv = "--steps 3 --seq-len 10 --hidden 4 --batch 8 --test-size 32 --kinds lstm".split()
    plot = tmp_path / "curves" / "long_memory.png"
    result = _load("long_memory").main([*argv, "--plot", str(plot)])
    assert set(result) == {"baseline_mse", "models", "lesson", "plot", "config"}
    assert result["plot"] == plot
    _assert_png(plot)
    assert set(result["models"]) == {"lstm"}
    assert 0 < result["baseline_mse"] < 1
    for numbers in result["models"].values():
        assert set(numbers) == {"test_mse", "last_train_mse", "seconds"}
        assert all(math.isfinite(v) for v in numbers.values())
    assert result["config"]["steps"] == 3 and result["config"]["seq_len"] == 10
    out = capsys.readouterr().out
    table = _table(out)
    assert list(table) == ["predict 1", "lstm"]
    assert [len(cells) for cells in table.values()] == [2, 3]
    assert float(table["predict 1"][0]) == pytest.approx(result["baseline_mse"], abs=1e-4)
    assert float(table["lstm"][0]) == pytest.approx(result["models"]["lstm"]["test_mse"], abs=1e-4)
    assert out.splitlines()[-1] == result["lesson"] and "lstm" in result["lesson"]


def test_long_memory_lesson() -> None:
    """The closing sentence follows the numbers: it says the RNN forgets only when it did."""
    lesson = _load("long_memory").lesson
    forgot = lesson(0.167, {"rnn": {"test_mse": 0.16}, "lstm": {"test_mse": 0.01}}, 100)
    assert "simple RNN forgets" in forgot and "LSTM remember" in forgot
    all_learnt = lesson(0.167, {"rnn": {"test_mse": 0.02}, "lstm": {"test_mse": 0.01}}, 10)
    assert "every model learnt" in all_learnt and "forgets" not in all_learnt
    none_learnt = lesson(0.167, {"rnn": {"test_mse": 0.16}, "lstm": {"test_mse": 0.15}}, 100)
    assert "forgets" not in none_learnt and "96%" in none_learnt


def test_timeseries_tiny(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = (
        "--steps 3 --seq-len 20 --hidden 4 --batch 8 --train-size 16 --test-size 8 "
        "--warmup 4 --ar-order 3 --kinds gru"
    ).split()
    plot = tmp_path / "timeseries.png"
    result = _load("timeseries").main([*argv, "--plot", str(plot)])
    assert set(result) == {"noise_floor", "baselines", "models", "plot", "config"}
    assert result["plot"] == plot
    _assert_png(plot)
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
