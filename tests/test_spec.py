"""MLPSpec: validation, variable names and shapes, and the dict round trip."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from mlpcore.spec import MLPSpec, bias_name, weights_name


def test_valid_spec_normalises_sizes_and_dropout() -> None:
    spec = MLPSpec(sizes=[5, 4, 3], activation="relu", dropout=1)  # type: ignore[arg-type]
    assert spec.sizes == (5, 4, 3)
    assert isinstance(spec.sizes, tuple)
    assert spec.dropout == 1.0 and isinstance(spec.dropout, float)
    assert (spec.n_layers, spec.n_inputs, spec.n_outputs) == (2, 5, 3)
    assert spec == MLPSpec(sizes=(5, 4, 3), activation="relu", dropout=1.0)


def test_defaults() -> None:
    spec = MLPSpec(sizes=(2, 1))
    assert spec.activation == "sigmoid"
    assert spec.dropout == 0.0
    assert spec.n_layers == 1


@pytest.mark.parametrize("sizes", [
    (), (3,), [7], (3, 0), (3, -1), (0, 3), (3, 2.0), (3, True), ("3", 2), (3, None),
    (3, 4, 0, 2),
])
def test_invalid_sizes(sizes: object) -> None:
    with pytest.raises(ValueError, match="sizes"):
        MLPSpec(sizes=sizes)  # type: ignore[arg-type]


@pytest.mark.parametrize("activation", ["softmax", "ReLU", "", None, "linear"])
def test_invalid_activation(activation: object) -> None:
    with pytest.raises(ValueError, match="activation"):
        MLPSpec(sizes=(3, 2), activation=activation)  # type: ignore[arg-type]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_valid_activations(activation: str) -> None:
    assert MLPSpec(sizes=(3, 2), activation=activation).activation == activation  # type: ignore[arg-type]


@pytest.mark.parametrize("dropout", [math.nan, -0.1, 1.1, math.inf, -math.inf, "0.5", True,
                                     None, 2])
def test_invalid_dropout(dropout: object) -> None:
    with pytest.raises(ValueError, match="dropout"):
        MLPSpec(sizes=(3, 2), dropout=dropout)  # type: ignore[arg-type]


@pytest.mark.parametrize("dropout", [0, 0.0, 0.5, 1, 1.0])
def test_valid_dropout(dropout: float) -> None:
    assert MLPSpec(sizes=(3, 2), dropout=dropout).dropout == float(dropout)


def test_spec_is_frozen() -> None:
    spec = MLPSpec(sizes=(3, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.dropout = 0.5  # type: ignore[misc]


def test_variable_names() -> None:
    assert weights_name(0) == "dense_0/weights"
    assert bias_name(3) == "dense_3/bias"


@pytest.mark.parametrize(("sizes", "expected"), [
    ((5, 4, 3), [("dense_0/weights", (5, 4)), ("dense_0/bias", (4,)),
                 ("dense_1/weights", (4, 3)), ("dense_1/bias", (3,))]),
    ((6, 5, 4, 3), [("dense_0/weights", (6, 5)), ("dense_0/bias", (5,)),
                    ("dense_1/weights", (5, 4)), ("dense_1/bias", (4,)),
                    ("dense_2/weights", (4, 3)), ("dense_2/bias", (3,))]),
    ((2, 1), [("dense_0/weights", (2, 1)), ("dense_0/bias", (1,))]),
])
def test_variable_shapes_in_layer_order(sizes: tuple[int, ...],
                                        expected: list[tuple[str, tuple[int, ...]]]) -> None:
    spec = MLPSpec(sizes=sizes)
    assert list(spec.variable_shapes().items()) == expected
    assert spec.weight_names() == [n for n, _ in expected if n.endswith("/weights")]


@pytest.mark.parametrize("spec", [
    MLPSpec(sizes=(784, 128, 10)),
    MLPSpec(sizes=(6, 5, 4, 3), activation="relu", dropout=0.25),
    MLPSpec(sizes=(1, 1), activation="tanh", dropout=1.0),
])
def test_dict_round_trip_through_json(spec: MLPSpec) -> None:
    data = spec.to_dict()
    assert data == {"sizes": list(spec.sizes), "activation": spec.activation,
                    "dropout": spec.dropout}
    assert MLPSpec.from_dict(json.loads(json.dumps(data))) == spec


def test_from_dict_rejects_unknown_keys_and_names_them() -> None:
    data = {**MLPSpec(sizes=(3, 2)).to_dict(), "bias": True, "layers": 2}
    with pytest.raises(ValueError, match="unknown") as info:
        MLPSpec.from_dict(data)
    assert "bias" in str(info.value) and "layers" in str(info.value)


@pytest.mark.parametrize("missing", ["sizes", "activation", "dropout"])
def test_from_dict_rejects_missing_keys(missing: str) -> None:
    data = MLPSpec(sizes=(3, 2), activation="tanh").to_dict()
    del data[missing]
    with pytest.raises(ValueError, match=missing):
        MLPSpec.from_dict(data)


@pytest.mark.parametrize("data", [
    None, [3, 2], "sizes", {"sizes": (3, 2), "activation": "relu", "dropout": 0.0},
    {"sizes": 3, "activation": "relu", "dropout": 0.0},
    {"sizes": [3, 0], "activation": "relu", "dropout": 0.0},
    {"sizes": [3, 2], "activation": "gelu", "dropout": 0.0},
    {"sizes": [3, 2], "activation": "relu", "dropout": 1.5},
])
def test_from_dict_rejects_malformed_data(data: object) -> None:
    with pytest.raises(ValueError):
        MLPSpec.from_dict(data)
