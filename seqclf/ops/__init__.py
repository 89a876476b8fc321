"""Pure functions: the recurrent layers (``lstm``, ``gru``, ``simple_rnn``: the fast cuDNN-style
custom VJP; ``*_reference``: the plain autodiff scans beside them) and their cells, Conv1D and
max pooling (lax), the fastText bag of n-grams, NBSVM's n-gram features, and dropout with a
cheap mask.

Importable but left out of ``__all__`` (internals, lookup tables): ``GATES`` (gate blocks per
kind), ``seqclf.ops.fused`` (the time-major custom-VJP recurrences) and
``seqclf.ops._cpu_loops`` (the CPU's shared-buffer training loops).
"""

from seqclf.ops._driver import reverse_padded, sequence_mask
from seqclf.ops.conv import conv1d, mask_padding, max_pool1d, output_lengths
from seqclf.ops.dropout import dropout, keep_mask
from seqclf.ops.naive_bayes import (
    class_totals,
    distinct_ngram_ids,
    distinct_ngrams,
    hashed_ngrams,
    log_count_ratios,
    ngram_token_weights,
    selected_log_count_ratios,
)
from seqclf.ops.ngrams import hashed_bigrams, ngram_bag
from seqclf.ops.recurrent import GATES as GATES  # importable, left out of __all__
from seqclf.ops.recurrent import (
    final_hidden,
    gru,
    gru_cell,
    gru_reference,
    init_params,
    lstm,
    lstm_cell,
    lstm_reference,
    recurrence,
    recurrent_stack,
    rnn_cell,
    simple_rnn,
    simple_rnn_reference,
)

__all__ = [
    # recurrent layers: the fast path, and the reference scans beside it
    "lstm",
    "gru",
    "simple_rnn",
    "lstm_reference",
    "gru_reference",
    "simple_rnn_reference",
    "recurrence",
    "recurrent_stack",
    "final_hidden",
    "init_params",
    # one time step: the equations
    "lstm_cell",
    "gru_cell",
    "rnn_cell",
    # padding and direction
    "sequence_mask",
    "reverse_padded",
    # convolution and pooling
    "conv1d",
    "max_pool1d",
    "mask_padding",
    "output_lengths",
    # bags of n-grams
    "ngram_bag",
    "hashed_bigrams",
    "hashed_ngrams",
    "distinct_ngrams",
    "distinct_ngram_ids",
    "log_count_ratios",
    "class_totals",
    "selected_log_count_ratios",
    "ngram_token_weights",
    # dropout
    "dropout",
    "keep_mask",
]
