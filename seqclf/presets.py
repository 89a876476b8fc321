"""Named model configurations: seqclf's default and the classic Keras model from the course.

``DEFAULT`` is what ``build_classifier()`` and ``seqclf train`` start from (``seqclf.recipe`` then
fits its data-dependent fields, the pool size and the n-gram buckets, to the training split).
``CLASSIC`` is the Keras IMDB example the course teaches — Embedding 128 → Dropout 0.25 → Conv1D
64×5 relu ('valid') → MaxPooling1D 4 → LSTM 70 → Dense — with no n-gram head:
``build_classifier(CLASSIC)``, or ``seqclf train --preset classic``.
"""

from __future__ import annotations

from seqclf.model import ClassifierConfig

DEFAULT = ClassifierConfig()

CLASSIC = ClassifierConfig(
    embed_dim=128,
    embed_dropout=0.25,
    conv_filters=(64,),
    conv_kernel_size=5,
    conv_padding="valid",
    pool_size=4,
    pool_ceil=False,
    rnn="lstm",
    hidden_size=70,
    bidirectional=False,
    reduce="last",
    dropout=0.0,
    nb_buckets=0,
)

PRESETS = {"default": DEFAULT, "classic": CLASSIC}
