"""Pure functions: the recurrent core (scan; ``fused``: the same with a cuDNN-style backward),
Conv1D and max pooling (lax), the fastText bag of n-grams, NBSVM's n-gram features, and dropout
with a cheap mask."""

from seqclf.ops.conv import conv1d, mask_padding, max_pool1d, output_lengths
from seqclf.ops.dropout import dropout, keep_mask
from seqclf.ops.fused import FUSED, gru_fused, lstm_fused, simple_rnn_fused
from seqclf.ops.naive_bayes import (
    distinct_ngrams,
    hashed_ngrams,
    log_count_ratios,
    ngram_token_weights,
    selected_log_count_ratios,
)
from seqclf.ops.ngrams import hashed_bigrams, ngram_bag
from seqclf.ops.recurrent import (
    GATES,
    RECURRENCES,
    final_hidden,
    gru,
    gru_cell,
    init_params,
    lstm,
    lstm_cell,
    recurrent_stack,
    reverse_padded,
    rnn_cell,
    sequence_mask,
    simple_rnn,
)

__all__ = [
    "FUSED",
    "gru_fused",
    "lstm_fused",
    "simple_rnn_fused",
    "GATES",
    "RECURRENCES",
    "conv1d",
    "distinct_ngrams",
    "dropout",
    "final_hidden",
    "gru",
    "gru_cell",
    "hashed_bigrams",
    "hashed_ngrams",
    "log_count_ratios",
    "ngram_token_weights",
    "ngram_bag",
    "init_params",
    "keep_mask",
    "lstm",
    "lstm_cell",
    "mask_padding",
    "max_pool1d",
    "output_lengths",
    "recurrent_stack",
    "reverse_padded",
    "rnn_cell",
    "selected_log_count_ratios",
    "sequence_mask",
    "simple_rnn",
]
