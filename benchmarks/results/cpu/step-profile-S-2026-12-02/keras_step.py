"""Keras 3 (JAX backend) train step of the S model on a fixed (30, 100) batch, ms per step."""

import os
import statistics
import time

os.environ["KERAS_BACKEND"] = "jax"
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

V, B, T = 20000, 30, 100
model = keras.Sequential(
    [
        keras.Input((T,), dtype="int32"),
        layers.Embedding(V, 128),
        layers.Dropout(0.25),
        layers.Conv1D(64, 5, padding="valid", activation="relu"),
        layers.MaxPooling1D(4),
        layers.LSTM(70),
        layers.Dense(2),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
rng = np.random.default_rng(0)
x = rng.integers(2, V, (B, T)).astype(np.int32)
y = rng.integers(0, 2, B).astype(np.int32)
for _ in range(20):
    model.train_on_batch(x, y)
ts = []
for _ in range(5):
    t = time.perf_counter()
    for _ in range(100):
        model.train_on_batch(x, y)
    ts.append((time.perf_counter() - t) / 100 * 1000)
print(f"keras train_on_batch (30, 100): {statistics.median(ts):.2f} ms (min {min(ts):.2f})")
# and model.fit over 100 copies of the batch (its own loop, steps_per_execution=1)
X = np.repeat(x, 100, 0)
Y = np.repeat(y, 100, 0)
model.fit(X, Y, batch_size=B, epochs=1, verbose=0, shuffle=False)
ts = []
for _ in range(3):
    t = time.perf_counter()
    model.fit(X, Y, batch_size=B, epochs=1, verbose=0, shuffle=False)
    ts.append((time.perf_counter() - t) / 100 * 1000)
print(f"keras fit, per step: {statistics.median(ts):.2f} ms (min {min(ts):.2f})")
