"""Text standardization, word tokenization and a frequency-ordered vocabulary.

Standardizing lowercases a text, turns HTML line breaks into spaces and deletes apostrophes (``'``
and ``’``), so ``"Don't"`` becomes ``"dont"`` and ``'quoted'`` loses its quotes. Two tokenizers
split the result (``TOKENIZERS``; a vocabulary remembers which one it was built with):

- ``"words_and_punctuation"`` (the default): maximal runs of letters and digits (``str.isalnum``,
  any script), and every ASCII punctuation mark (``!``, ``?``, ``.``, ``:``, ``)`` ...) as a token
  of its own, as BERT's basic tokenizer and the accuracy suite's baselines split them. Marks carry
  meaning a bag of words loses: ``!`` and ``:)`` in a review, ``?`` in a question. Measured on
  validation rows only (``benchmarks/results/accuracy/punctuation-probe-2026-12-02/``), NBSVM on
  these tokens beats NBSVM on words alone on Subj by 0.008 and on IMDB by 0.003, and ties on the
  other sets.
- ``"words"``: the runs of letters and digits only; all other characters separate tokens and are
  dropped (Keras ``TextVectorization`` also strips punctuation by default; it deletes it instead,
  so it reads ``well-known`` as ``wellknown`` where this reads ``well``, ``known``). Checkpoints
  written before the other tokenizer existed use this one.

Other characters (spaces, control characters, non-ASCII symbols such as ``…`` or ``“``) separate
tokens in both.

``tokenize`` is the reference: one regular expression, obviously right. ``Vocabulary.encode_batch``
and ``Vocabulary.build`` take a vectorized path over whole chunks of texts instead (one bytes
buffer, token boundaries and 64-bit tabulation hashes of each token computed with numpy, ids looked
up in a vectorized hash table), because creating one Python string per token is what costs the time.
The tests hold the two paths together on random text. A different token could only get a
vocabulary word's id if their 64-bit hashes collided (below 1e-9 for all of IMDB); a vocabulary
whose own words collide falls back to the reference path.

Measured (2026-11-27, 2-core CPU, AMD EPYC VM shared with other jobs, load average about 5):
encoding all 50,000 IMDB reviews (train + test, 65 MB of text, 11.5 M tokens) with
``encode_batch`` takes 2.1 s of CPU time, 3.0-4.3 s wall; the reference path (``tokenize``, then
a dict look-up per token) takes 10.5 s of CPU time. ``build`` on the 25,000 training reviews:
2.8 s of CPU time.

The module runs past ~400 lines so that the reference tokenizer and its vectorized twin stay
side by side, with the vocabulary both feed: a reader (and the tests) can hold one against the
other.
"""

from __future__ import annotations

import json
import re
import string
import threading
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

PAD = 0
OOV = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<unk>"

_FORMAT = "seqclf.Vocabulary"
_VERSION = 1

# Each tokenizer: does it keep ASCII punctuation marks as tokens? (The one place naming them.)
_KEEPS_MARKS = {"words_and_punctuation": True, "words": False}
TOKENIZERS = tuple(_KEEPS_MARKS)
DEFAULT_TOKENIZER = TOKENIZERS[0]
_WORD = r"[^\W_]+"  # letters and digits of any script
_MARK = "[" + re.escape(string.punctuation) + "]"  # one ASCII punctuation character
_TOKEN_PATTERNS = {
    name: re.compile(_WORD + "|" + _MARK if marks else _WORD)
    for name, marks in _KEEPS_MARKS.items()
}
_NON_ASCII_SEPARATOR = re.compile(r"[^\x00-\x7f\w]")  # non-ASCII characters that are not \w
_APOSTROPHES = ("'", "\u2019")

_SPACE = 32
_MARK_BYTES = frozenset(string.punctuation.encode("ascii"))
# Lowercase ASCII letters and digits stay, and ASCII punctuation where it is a token; every other
# ASCII byte becomes a space; bytes >= 0x80 (pieces of non-ASCII letters, the only non-ASCII
# characters left after _NON_ASCII_SEPARATOR) stay.
_BYTE_TABLES = {
    name: bytes(
        b
        if (48 <= b <= 57 or 97 <= b <= 122 or b >= 128 or (marks and b in _MARK_BYTES))
        else _SPACE
        for b in range(256)
    )
    for name, marks in _KEEPS_MARKS.items()
}
_IS_MARK = np.zeros(256, dtype=bool)
_IS_MARK[list(_MARK_BYTES)] = True
_HASH_POSITIONS = 64
_HASH_TABLE = np.frombuffer(
    np.random.default_rng(20261127).bytes(_HASH_POSITIONS * 256 * 8), dtype=np.uint64
)
_CHUNK = 2000  # texts per vectorized chunk: a few MB of temporaries
_TABLE_LOCK = threading.Lock()  # building a vocabulary's hash table (once per vocabulary)


def standardize(text: str) -> str:
    """Lowercases ``text``, then replaces HTML line breaks (``<br />``, ``<br>``...) by spaces.

    Returns:
      The standardized text, e.g. ``standardize("Good.<br /><br />BAD") == "good.  bad"``.
    """
    return text.lower().replace("<br />", " ").replace("<br/>", " ").replace("<br>", " ")


def _strip_apostrophes(text: str) -> str:
    for a in _APOSTROPHES:
        if a in text:
            text = text.replace(a, "")
    return text


def _check_tokenizer(tokenizer: str) -> str:
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    return tokenizer


def tokenize(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> list[str]:
    """Splits ``text`` into tokens: see the module docstring for the exact rules.

    Args:
      text: one document.
      tokenizer: one of ``TOKENIZERS``.

    Returns:
      The tokens, in order, e.g. ``tokenize("Don't<br />stop!") == ["dont", "stop", "!"]``, and
      ``tokenize("Don't<br />stop!", "words") == ["dont", "stop"]``.
    """
    return _TOKEN_PATTERNS[_check_tokenizer(tokenizer)].findall(
        _strip_apostrophes(standardize(text))
    )


def _as_str(text: Any, index: int | None) -> str:
    if isinstance(text, str):
        return text
    name = "text" if index is None else f"text {index}"
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name} is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    raise TypeError(f"{name} must be str or bytes, got {type(text).__name__}")


def _as_strs(texts: Iterable[Any]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of documents, not a single str or bytes")
    return [_as_str(t, i) for i, t in enumerate(texts)]


# ---------------------------------------------------------------------------------------------
# Vectorized path: many texts at once, no Python object per token
# ---------------------------------------------------------------------------------------------


def _to_bytes(text: str, tokenizer: str) -> bytes:
    """``text`` standardized, as UTF-8 where every separator is a space (one byte per separator)."""
    s = _strip_apostrophes(standardize(text))
    if not s.isascii():
        s = _NON_ASCII_SEPARATOR.sub(" ", s)
    return s.encode("utf-8").translate(_BYTE_TABLES[tokenizer])


def _hash_tokens(buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens of a buffer made by ``_to_bytes``: (hash uint64 (K,), start int64 (K,), length (K,)).

    A token is a run of non-space bytes, except that a punctuation byte (only left in the buffer
    by a tokenizer that keeps punctuation) is a token of its own.

    The hash of a token b_0 ... b_{n-1} is the wrapping sum of ``TABLE[min(k, 63), b_k]`` (simple
    tabulation hashing, Zobrist 1970; Patrascu & Thorup 2012).
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    idx = np.flatnonzero(a != _SPACE)  # positions of word bytes
    if idx.size == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, np.uint64), empty, empty
    first_mark = np.empty(idx.size, dtype=bool)
    first_mark[0] = True
    np.not_equal(np.diff(idx), 1, out=first_mark[1:])
    is_mark = _IS_MARK[a[idx]]
    if is_mark.any():  # a mark starts a token, and so does whatever follows it
        first_mark |= is_mark
        first_mark[1:] |= is_mark[:-1]
    first = np.flatnonzero(first_mark)  # where each token starts, in idx
    lengths = np.diff(first, append=idx.size)
    pos = np.arange(idx.size) - np.repeat(first, lengths)
    np.minimum(pos, _HASH_POSITIONS - 1, out=pos)
    pos *= 256
    pos += a[idx]
    hashes = np.add.reduceat(_HASH_TABLE[pos], first)
    return hashes, idx[first], lengths


def _chunks(texts: list[str], tokenizer: str) -> Iterable[tuple[bytes, np.ndarray]]:
    """Joins ``texts`` in chunks: (buffer, start offset of each text in it (n,))."""
    for lo in range(0, len(texts), _CHUNK):
        parts = [_to_bytes(t, tokenizer) for t in texts[lo : lo + _CHUNK]]
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1
        offsets = np.cumsum(sizes) - sizes
        yield b" ".join(parts) + b" ", offsets


def _count_words(texts: list[str], tokenizer: str) -> dict[str, int]:
    """Word -> number of occurrences over ``texts``, by the vectorized path."""
    counts: dict[str, int] = {}
    for buf, _ in _chunks(texts, tokenizer):
        hashes, starts, lengths = _hash_tokens(buf)
        _, first, n = np.unique(hashes, return_index=True, return_counts=True)
        for s, ln, c in zip(
            starts[first].tolist(), lengths[first].tolist(), n.tolist(), strict=True
        ):
            w = buf[s : s + ln].decode("utf-8")
            counts[w] = counts.get(w, 0) + c
    return counts


class _HashTable:
    """Open addressing with linear probing, vectorized: uint64 key -> int32 id, misses -> OOV.

    The table has at least 4 slots per key, so most look-ups end at the first slot.
    """

    def __init__(self, keys: np.ndarray, ids: np.ndarray):
        bits = max(8, int(np.ceil(np.log2(4 * max(keys.size, 1)))))
        size = 1 << bits
        self.shift = np.uint64(64 - bits)
        self.mask = size - 1
        slot_keys = [0] * size  # 0 marks an empty slot (no vocabulary key is 0)
        slot_ids = [OOV] * size
        for key, slot, i in zip(
            keys.tolist(), (keys >> self.shift).tolist(), ids.tolist(), strict=True
        ):
            while slot_keys[slot]:
                slot = (slot + 1) & self.mask
            slot_keys[slot] = key
            slot_ids[slot] = i
        self.keys = np.array(slot_keys, dtype=np.uint64)
        self.ids = np.array(slot_ids, dtype=np.int32)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Ids of ``hashes`` (uint64 (K,)): int32 (K,)."""
        slot = (hashes >> self.shift).astype(np.intp)
        found = self.keys[slot]
        out = np.where(found == hashes, self.ids[slot], np.int32(OOV))
        todo = np.flatnonzero((found != hashes) & (found != 0))  # slot taken by another key
        while todo.size:
            slot[todo] = (slot[todo] + 1) & self.mask
            found = self.keys[slot[todo]]
            hit = found == hashes[todo]
            out[todo[hit]] = self.ids[slot[todo[hit]]]
            todo = todo[~hit & (found != 0)]
        return out


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------


def _vocab_size(vocab_size: int, max_words: int | None) -> int:
    """``vocab_size``, or the deprecated ``max_words`` when that is what was given."""
    if max_words is None:
        return vocab_size
    import warnings

    warnings.warn(
        "Vocabulary.build(max_words=...) is now vocab_size=...", DeprecationWarning, stacklevel=3
    )
    return max_words


class Vocabulary:
    """Word <-> id table: ``PAD = 0``, ``OOV = 1``, then words by descending frequency.

    Ties in frequency are broken alphabetically, so building is deterministic.

    ``words[i]`` is the token of id ``i``: ``words[0] == "<pad>"``, ``words[1] == "<unk>"``.
    Neither can come out of ``tokenize`` (a token of letters has no ``<``, and a punctuation token
    is one character), so they never clash with words. ``tokenizer`` is how texts are split
    before the look-up, the one the vocabulary was built with; it is saved with the words.

    Example::

        vocab = Vocabulary.build(train_texts, vocab_size=20000)
        ids = vocab.encode("A great movie!")          # int32 (4,)
        all_ids = vocab.encode_batch(train_texts)     # list of int32 (T_i,)
        vocab.decode(ids)                             # "a great movie !"
    """

    def __init__(self, words: Sequence[str], tokenizer: str = DEFAULT_TOKENIZER):
        """Args:
        words: the ordinary words, for ids 2, 3, ... in that order (no ``<pad>``/``<unk>``).
        tokenizer: one of ``TOKENIZERS``: how ``encode`` splits a text.
        """
        self.tokenizer = _check_tokenizer(tokenizer)
        words = list(words)
        for w in words:
            if not isinstance(w, str) or not w:
                raise ValueError(f"vocabulary words must be non-empty strings, got {w!r}")
        table = {PAD_TOKEN: PAD, OOV_TOKEN: OOV}
        for i, w in enumerate(words, start=2):
            if w in table:
                raise ValueError(f"word {w!r} appears twice in the vocabulary (or is reserved)")
            table[w] = i
        self._words = [PAD_TOKEN, OOV_TOKEN, *words]
        self._index = table
        self._table: _HashTable | None = None  # built on first encode_batch
        self._fast = True

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        texts: Iterable[str | bytes],
        vocab_size: int = 20000,
        min_count: int = 1,
        *,
        tokenizer: str = DEFAULT_TOKENIZER,
        max_words: int | None = None,
    ) -> Vocabulary:
        """Builds the vocabulary of the most frequent words of ``texts``.

        Args:
          texts: documents, str or UTF-8 bytes.
          vocab_size: size of the vocabulary, counting ``<pad>`` and ``<unk>``; at least 3.
          min_count: words seen fewer times are left out (they encode as OOV).
          tokenizer: one of ``TOKENIZERS``.
          max_words: the older name of ``vocab_size`` (deprecated).

        Returns:
          A ``Vocabulary`` with at most ``vocab_size`` entries.
        """
        vocab_size = _vocab_size(vocab_size, max_words)
        if vocab_size < 3:
            raise ValueError(
                f"vocab_size counts <pad> and <unk>, so it must be >= 3, got {vocab_size}"
            )
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        _check_tokenizer(tokenizer)
        strs = _as_strs(texts)
        if not strs:
            raise ValueError("cannot build a vocabulary from no texts")
        counts = _count_words(strs, tokenizer)
        if not counts:
            raise ValueError(f"cannot build a vocabulary: the {len(strs)} texts contain no words")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, c in ranked[: vocab_size - 2] if c >= min_count]
        if not words:
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        return cls(words, tokenizer)

    @classmethod
    def build_reference(
        cls,
        texts: Iterable[str | bytes],
        vocab_size: int = 20000,
        min_count: int = 1,
        *,
        tokenizer: str = DEFAULT_TOKENIZER,
        max_words: int | None = None,
    ) -> Vocabulary:
        """``build`` by ``tokenize`` and a Counter: slow, obviously right (used by the tests)."""
        from collections import Counter

        vocab_size = _vocab_size(vocab_size, max_words)
        counts = Counter(w for t in _as_strs(texts) for w in tokenize(t, tokenizer))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([w for w, c in ranked[: vocab_size - 2] if c >= min_count], tokenizer)

    # -- properties ---------------------------------------------------------------------------

    @property
    def words(self) -> list[str]:
        """Token of each id: ``["<pad>", "<unk>", most frequent word, ...]``."""
        return list(self._words)

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index and word not in (PAD_TOKEN, OOV_TOKEN)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self._words == other._words
            and self.tokenizer == other.tokenizer
        )

    def __repr__(self) -> str:
        head = ", ".join(self._words[2:7])
        more = ", ..." if len(self) > 7 else ""
        return f"Vocabulary({len(self)} entries: {head}{more}; tokenizer {self.tokenizer!r})"

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` as this vocabulary splits it (before the look-up)."""
        return tokenize(text, self.tokenizer)

    def id_of(self, word: str) -> int:
        """Id of ``word`` (a token), ``OOV`` if it is not in the vocabulary."""
        return self._index.get(word, OOV)

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, text: str | bytes) -> np.ndarray:
        """Token ids of one document: int32 (T,), T = number of tokens (0 for an empty text)."""
        get = self._index.get
        tokens = tokenize(_as_str(text, None), self.tokenizer)
        return np.fromiter((get(w, OOV) for w in tokens), dtype=np.int32, count=len(tokens))

    def encode_batch(self, texts: Iterable[str | bytes]) -> list[np.ndarray]:
        """Token ids of many documents: a list of int32 (T_i,), the same as ``encode`` on each."""
        strs = _as_strs(texts)
        table = self._hash_table()
        if table is None:
            return [self.encode(t) for t in strs]
        out: list[np.ndarray] = []
        for buf, offsets in _chunks(strs, self.tokenizer):
            hashes, starts, _ = _hash_tokens(buf)
            ids = table.lookup(hashes)
            out.extend(np.split(ids, np.searchsorted(starts, offsets[1:])))
        return out

    def _hash_table(self) -> _HashTable | None:
        """Token hash -> id for the words ``tokenize`` can produce; None if two of them collide.

        Built once, on first use, under a lock: a vocabulary may be shared by threads.
        """
        if self._table is not None or not self._fast:
            return self._table
        with _TABLE_LOCK:
            return self._build_hash_table()

    def _build_hash_table(self) -> _HashTable | None:
        if self._table is None and self._fast:
            split = self.tokenize
            ids = [i for i, w in enumerate(self._words) if i >= 2 and split(w) == [w]]
            keys, _, _ = _hash_tokens(
                _to_bytes(" ".join(self._words[i] for i in ids), self.tokenizer)
            )
            if keys.size != len(ids) or np.unique(keys).size != keys.size or (keys == 0).any():
                self._fast = False  # a collision inside the vocabulary: never guess
            else:
                self._table = _HashTable(keys, np.asarray(ids, dtype=np.int32))
        return self._table

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Words of ``ids`` joined by spaces; PAD ids are skipped, OOV shows as ``<unk>``.

        Args:
          ids: int (T,), e.g. one row of a padded batch.
        """
        n = len(self._words)
        out = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if i == PAD:
                continue
            if not 0 <= i < n:
                raise ValueError(f"id {i} is outside the vocabulary (size {n})")
            out.append(self._words[i])
        return " ".join(out)

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict ``{"format", "version", "tokenizer", "words"}``; ``words`` includes
        the specials."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "tokenizer": self.tokenizer,
            "words": list(self._words),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        """Inverse of ``to_dict``."""
        if not isinstance(d, dict) or "words" not in d:
            raise ValueError("not a seqclf vocabulary: expected a dict with a 'words' list")
        if d.get("format", _FORMAT) != _FORMAT or d.get("version", _VERSION) != _VERSION:
            raise ValueError(
                f"unsupported vocabulary format {d.get('format')!r} version {d.get('version')!r}"
            )
        words = d["words"]
        if list(words[:2]) != [PAD_TOKEN, OOV_TOKEN]:
            raise ValueError(f"vocabulary words must start with {PAD_TOKEN!r}, {OOV_TOKEN!r}")
        # A vocabulary saved before the tokenizer was saved with it was built with "words".
        return cls(words[2:], d.get("tokenizer", "words"))

    def save(self, path: str | PathLike) -> None:
        """Writes the vocabulary as JSON (UTF-8, one word per line of the list)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=0)
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | PathLike) -> Vocabulary:
        """Reads a vocabulary written by ``save``."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a JSON vocabulary ({e})") from None
        return cls.from_dict(d)
