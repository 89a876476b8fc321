"""Tests of seqclf.data: tokenizer and vocabulary, loaders, batching."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from seqclf.data import (
    OOV,
    PAD,
    TOKENIZERS,
    TextDataset,
    UnknownDatasetError,
    Vocabulary,
    batches,
    bucket_boundaries,
    num_batches,
    pad_batch,
    read_dataset,
    read_folder,
    read_table,
    read_texts,
    read_tfds,
    resolve_data_dir,
    standardize,
    tokenize,
    train_validation_split,
    truncate,
)

# ---------------------------------------------------------------------------------------------
# Tokenizer and vocabulary
# ---------------------------------------------------------------------------------------------


def test_standardize_lowercases_and_removes_html_line_breaks():
    assert standardize("Good.<br /><br />BAD<br>x<BR/>y") == "good.  bad x y"
    assert tokenize("Great movie.<br /><br />Loved it<br>really", "words") == [
        "great",
        "movie",
        "loved",
        "it",
        "really",
    ]
    for tokenizer in TOKENIZERS:
        tokens = tokenize("a<br />b<BR />c<br/>d<br>e", tokenizer)
        assert tokens == ["a", "b", "c", "d", "e"], tokenizer


def test_tokenize_rules():
    text = "Don't stop!!! It's 'quoted' -- well-known, 10/10?"
    assert tokenize(text, "words") == [
        "dont", "stop", "its", "quoted", "well", "known", "10", "10",
    ]  # fmt: skip
    assert tokenize(text) == tokenize(text, "words_and_punctuation") == [
        "dont", "stop", "!", "!", "!", "its", "quoted", "-", "-", "well", "-", "known", ",",
        "10", "/", "10", "?",
    ]  # fmt: skip
    assert tokenize("Café’s NAÏVE snake_case", "words") == ["cafés", "naïve", "snake", "case"]
    assert tokenize("Café’s snake_case :)") == ["cafés", "snake", "_", "case", ":", ")"]
    # Non-ASCII symbols separate tokens in both; only ASCII punctuation becomes a token.
    assert tokenize("wait…“what”—no") == ["wait", "what", "no"]
    for tokenizer in TOKENIZERS:
        assert tokenize("", tokenizer) == []
    assert tokenize("... !!! ???", "words") == []
    assert tokenize("... !?") == [".", ".", ".", "!", "?"]
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        tokenize("a", "bpe")


def test_vocabulary_order_is_by_frequency_then_alphabetical():
    texts = ["b a", "c a b", "d", "e e e"]
    vocab = Vocabulary.build(texts)
    assert vocab.words == ["<pad>", "<unk>", "e", "a", "b", "c", "d"]
    assert len(vocab) == 7
    assert Vocabulary.build(list(reversed(texts))) == vocab  # input order does not matter
    assert Vocabulary.build(texts, vocab_size=4).words == ["<pad>", "<unk>", "e", "a"]
    assert Vocabulary.build(texts, min_count=2).words == ["<pad>", "<unk>", "e", "a", "b"]


def test_encode_decode_round_trip_and_oov():
    vocab = Vocabulary.build(["the cat sat on the mat", "a dog"])
    text = "The CAT sat on a mat"
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (6,)
    assert OOV not in ids and PAD not in ids
    assert vocab.decode(ids) == " ".join(tokenize(text)) == "the cat sat on a mat"
    assert vocab.decode(vocab.encode("a mat!")) == "a mat <unk>"  # no "!" in its training texts
    unknown = vocab.encode("the zebra")
    assert unknown.tolist() == [vocab.id_of("the"), OOV]
    assert vocab.decode(unknown) == "the <unk>"
    assert vocab.decode(np.array([vocab.id_of("cat"), PAD, PAD])) == "cat"  # padding is skipped
    assert vocab.encode("").shape == (0,)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([len(vocab)])


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary.build(["Él dijo: ¡olé!", "the end", "the"])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.words == vocab.words
    assert json.loads(path.read_text(encoding="utf-8"))["words"][:3] == ["<pad>", "<unk>", "the"]
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert loaded.encode("olé the end").tolist() == vocab.encode("olé the end").tolist()
    assert loaded.tokenizer == vocab.tokenizer == "words_and_punctuation"
    words_only = Vocabulary.build(["a b!"], tokenizer="words")
    assert Vocabulary.from_dict(words_only.to_dict()).tokenizer == "words"
    assert words_only != Vocabulary(["a", "b"])  # the same words, split another way
    # A vocabulary saved before the tokenizer was saved with it was built with "words".
    old = {k: v for k, v in vocab.to_dict().items() if k != "tokenizer"}
    assert Vocabulary.from_dict(old).tokenizer == "words"
    assert Vocabulary.from_dict(old).encode("the end!").tolist() == vocab.encode("the end").tolist()
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.from_dict({"words": ["the", "<pad>"]})
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(["a", "a"])


def _random_texts(n: int, seed: int) -> list[str]:
    pieces = [
        "good", "Bad", "movie", "don't", "It's", "’twas", "<br />", "<br>", "<BR/>", "!", "?",
        ".", ",", " ", "  ", "\n", "\t", "_", "-", "'", "’", "10/10", "2nd", "café", "NAÏVE",
        "straße", "İstanbul", "\u212a", "½", "²", "…", "\u00a0", "“", "”", "日本語", "😀", "x_y",
        "a", "zebra", "\x96", "&amp;", "<i>", "ǅ",
    ]  # fmt: skip
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(pieces, size=rng.integers(0, 30))) for _ in range(n)]


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_vectorized_paths_match_the_reference(tokenizer):
    texts = _random_texts(600, seed=0) + ["", "   ", "!!!", "a!b", "!a", "a!", ":-)"]
    vocab = Vocabulary.build(texts[:300], vocab_size=25, tokenizer=tokenizer)
    assert vocab == Vocabulary.build_reference(texts[:300], vocab_size=25, tokenizer=tokenizer)
    fast = vocab.encode_batch(texts)
    assert len(fast) == len(texts)
    for text, ids in zip(texts, fast, strict=True):
        ref = vocab.encode(text)
        assert ids.dtype == np.int32 and ids.tolist() == ref.tolist(), text
        assert len(ids) == len(tokenize(text, tokenizer))
    big = Vocabulary.build(texts, tokenizer=tokenizer)
    assert big == Vocabulary.build_reference(texts, tokenizer=tokenizer)
    assert [a.tolist() for a in big.encode_batch(texts)] == [big.encode(t).tolist() for t in texts]


def test_hash_table_probing_and_reference_fallback():
    from seqclf.data.text import _HashTable

    # Keys sharing their top bits all land on one slot (first or last): long probe chains, wrap.
    low = np.arange(1, 200, dtype=np.uint64)
    high = np.uint64(2**64 - 1) - np.arange(0, 50, dtype=np.uint64)
    keys = np.concatenate([low, high])
    ids = np.arange(2, 2 + keys.size, dtype=np.int32)
    table = _HashTable(keys, ids)
    assert table.lookup(keys).tolist() == ids.tolist()
    misses = np.array([1000, 2000, 2**64 - 1000], dtype=np.uint64)
    assert table.lookup(misses).tolist() == [OOV] * 3

    texts = _random_texts(50, seed=1)
    vocab = Vocabulary.build(texts)
    vocab._fast = False  # what a hash collision inside the vocabulary switches to
    assert [a.tolist() for a in vocab.encode_batch(texts)] == [
        vocab.encode(t).tolist() for t in texts
    ]


def test_bytes_input_and_invalid_utf8():
    vocab = Vocabulary.build([b"caf\xc3\xa9 ok", "ok"])
    assert vocab.words[2:] == ["ok", "café"]
    with pytest.raises(ValueError, match="text 2 is not valid UTF-8"):
        Vocabulary.build(["fine", b"also fine", b"bad \xff byte"])
    with pytest.raises(ValueError, match="text 1 is not valid UTF-8"):
        vocab.encode_batch(["ok", b"\xc3"])


def test_empty_vocabulary_source_raises():
    with pytest.raises(ValueError, match="no texts"):
        Vocabulary.build([])
    with pytest.raises(ValueError, match="no words"):
        Vocabulary.build(["!!!", ""], tokenizer="words")
    with pytest.raises(ValueError, match="no words"):
        Vocabulary.build(["  ", "…"])
    with pytest.raises(ValueError, match="vocab_size"):
        Vocabulary.build(["a"], vocab_size=2)
    with pytest.raises(TypeError, match="single str"):
        Vocabulary.build("not a list of texts")


# ---------------------------------------------------------------------------------------------
# Tables and folders
# ---------------------------------------------------------------------------------------------


def test_csv_with_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('text,label\n"Great, truly",pos\nAwful,neg\n"two\nlines",pos\n\n', "utf-8")
    ds = read_table(path)
    assert ds.texts == ["Great, truly", "Awful", "two\nlines"]
    assert ds.classes == ["neg", "pos"]
    assert ds.labels.dtype == np.int32 and ds.labels.tolist() == [1, 0, 1]


def test_tsv_and_jsonl_with_integer_labels(tmp_path):
    tsv = tmp_path / "data.tsv"
    tsv.write_text("label\treview\n2\tok\n10\tgreat\n1\tbad\n", "utf-8")
    ds = read_table(tsv, text_column="review")
    assert ds.classes == ["1", "2", "10"]  # integer labels sort numerically
    assert ds.labels.tolist() == [1, 2, 0]

    jsonl = tmp_path / "data.jsonl"
    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}, {"text": "", "label": 1}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    ds = read_table(jsonl)
    assert ds.classes == ["0", "1"] and ds.labels.tolist() == [1, 0, 1]
    assert ds.texts == ["good", "bad", ""]
    same = read_table(tmp_path / "data.jsonl", format="jsonl")
    assert same.texts == ds.texts
    array = tmp_path / "data.json"  # a .json file may also hold one array of objects
    array.write_text(json.dumps(rows), "utf-8")
    assert read_table(array) == ds


def test_csv_with_bom_and_windows_line_endings(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\r\nnaïve,b\r\nok,a\r\n".encode("utf-8-sig"))
    ds = read_table(path)
    assert ds.texts == ["naïve", "ok"] and ds.classes == ["a", "b"] and ds.labels.tolist() == [1, 0]


def test_misnamed_column_lists_the_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\nnice,pos\n", "utf-8")
    with pytest.raises(ValueError) as err:
        read_table(path)
    message = str(err.value)
    assert "'text'" in message and "['review', 'sentiment']" in message
    with pytest.raises(ValueError, match="no label column 'label'.*'sentiment'"):
        read_table(path, text_column="review")
    assert read_table(path, "review", "sentiment").classes == ["pos"]


def test_unseen_label_at_evaluation_names_label_and_line(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("text,label\na,pos\nb,neg\nc,neutral\n", "utf-8")
    with pytest.raises(ValueError, match=r"line 4: label 'neutral' is not one of the classes"):
        read_table(path, classes=["neg", "pos"])
    ok = tmp_path / "ok.csv"
    ok.write_text("text,label\na,pos\nb,pos\n", "utf-8")
    assert read_table(ok, classes=["neg", "pos"]).labels.tolist() == [1, 1]
    ids = tmp_path / "ids.csv"
    ids.write_text("text,label\na,1\nb,0\n", "utf-8")  # class ids for named classes
    assert read_table(ids, classes=["neg", "pos"]).labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="line 3: label '0' is not one of the classes"):
        read_table(ids, classes=["1", "2"])  # integer class names: labels are names, not ids
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\n', "utf-8")
    with pytest.raises(ValueError, match="line 2: label 'meh'"):
        read_table(jsonl, classes=["neg", "pos"])


def test_table_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,label\nfine,pos\nbroken \xff here,neg\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 3 is not valid UTF-8"):
        read_table(bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("", "utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n", "utf-8")
    with pytest.raises(ValueError, match="no rows"):
        read_table(header_only)
    unknown = tmp_path / "data.xlsx"
    unknown.write_text("x", "utf-8")
    with pytest.raises(ValueError, match="format"):
        read_table(unknown)
    broken_json = tmp_path / "b.jsonl"
    broken_json.write_text('{"text": "a", "label": 1}\n{"text": \n', "utf-8")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_table(broken_json)


def test_read_texts_streams_each_format(tmp_path):
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes(
        'text,label\r\n"two\r\nlines",pos\r\n\r\nnaïve,neg\r\n'.encode("utf-8-sig")
    )
    assert list(read_texts(csv_file)) == ["two\r\nlines", "naïve"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\treview\n1\tgood\n2\t\n", "utf-8")
    assert list(read_texts(tsv, text_column="review")) == ["good", ""]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('\n{"text": "a"}\n\n{"text": "", "label": 3}\n', "utf-8")
    assert list(read_texts(jsonl)) == ["a", ""]
    array = tmp_path / "t.json"
    array.write_text(json.dumps([{"text": "x"}, {"text": "y"}]), "utf-8")
    assert list(read_texts(array)) == ["x", "y"]


def test_read_texts_is_lazy_and_its_errors_name_the_line(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"text\n" + b"fine\n" * 5000 + b"bad \xff\n")
    texts = read_texts(big)
    assert [next(texts) for _ in range(3)] == ["fine"] * 3  # read before the bad line is reached
    with pytest.raises(ValueError, match=r"big\.csv: line 5002 is not valid UTF-8"):
        list(texts)
    # Checked at once: the format, and the header of a CSV/TSV file.
    with pytest.raises(ValueError, match=r"no text column 'review'; the columns are \['text'\]"):
        read_texts(big, text_column="review")
    with pytest.raises(ValueError, match="cannot tell the table format"):
        read_texts(tmp_path / "notes.xlsx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_texts(tmp_path / "missing.csv")
    # Found when reached: a JSON line without the text, a text that is not a string, no rows.
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "a"}\n{"body": "b"}\n', "utf-8")
    with pytest.raises(ValueError, match="b.jsonl: line 2: no text column 'text'.*'body'"):
        list(read_texts(jsonl))
    jsonl.write_text('{"text": "a"}\n{"text": 3}\n', "utf-8")
    with pytest.raises(ValueError, match="line 2: text must be a string, got 3"):
        list(read_texts(jsonl))
    jsonl.write_text('{"text": "a"}\n[1, 2]\n', "utf-8")
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        list(read_texts(jsonl))
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n", "utf-8")
    with pytest.raises(ValueError, match="h.csv has no rows"):
        list(read_texts(header_only))
    short = tmp_path / "short.csv"
    short.write_text("label,text\npos,ok\nneg\n", "utf-8")
    with pytest.raises(ValueError, match="line 3 has 1 fields, the header 2"):
        list(read_texts(short))


def _write_acl_imdb(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{i}_{7 if name == 'pos' else 2}.txt").write_text(
                f"{name} review {i}<br />", "utf-8"
            )


def test_folder_loader(tmp_path):
    root = tmp_path / "aclImdb" / "train"
    _write_acl_imdb(root, {"pos": 3, "neg": 2})
    (root / "empty").mkdir()
    (root / "urls_pos.txt").write_text("http://x", "utf-8")  # files beside folders are ignored
    ds = read_folder(root)
    assert ds.classes == ["neg", "pos"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    assert ds.texts[0] == "neg review 0<br />"
    _write_acl_imdb(root, {"unsup": 4})
    assert read_folder(root).classes == ["neg", "pos", "unsup"]
    only = read_folder(root, classes=["pos", "neg"])
    assert only.classes == ["pos", "neg"] and only.labels.tolist() == [0, 0, 0, 1, 1]
    (root / "neg" / "bad.txt").write_bytes(b"\xff")
    with pytest.raises(ValueError, match=r"bad\.txt is not valid UTF-8"):
        read_folder(root)
    (tmp_path / "none" / "pos").mkdir(parents=True)
    with pytest.raises(ValueError, match="no subfolder holds .txt files"):
        read_folder(tmp_path / "none")


def test_load_any_dispatches(tmp_path, imdb_data_dir):
    _write_acl_imdb(tmp_path / "folder", {"pos": 1, "neg": 1})
    assert read_dataset(tmp_path / "folder").classes == ["neg", "pos"]
    table = tmp_path / "t.csv"
    table.write_text("text,label\na,x\n", "utf-8")
    assert read_dataset(str(table)).classes == ["x"]
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path / "missing.csv")
    with pytest.raises(UnknownDatasetError, match="no file or folder 'imdb_reviewz'"):
        read_dataset("imdb_reviewz", data_dir=imdb_data_dir)
    ds = read_dataset(
        "imdb_reviews", split="test[:20]", data_dir=imdb_data_dir, classes=["pos", "neg"]
    )
    assert len(ds) == 20 and ds.classes == ["pos", "neg"]
    plain = read_tfds("imdb_reviews", split="test[:20]", data_dir=imdb_data_dir)
    assert (ds.labels == 1 - plain.labels).all()


# ---------------------------------------------------------------------------------------------
# TFDS
# ---------------------------------------------------------------------------------------------


def test_load_tfds_slice_of_shared_imdb(imdb_data_dir):
    ds = read_tfds("imdb_reviews", split="train[:200]", data_dir=imdb_data_dir)
    assert len(ds) == 200
    assert ds.classes == ["neg", "pos"]
    assert set(ds.labels.tolist()) <= {0, 1} and ds.labels.dtype == np.int32
    assert all(isinstance(t, str) and t for t in ds.texts)
    ids = Vocabulary.build(ds.texts, vocab_size=500).encode_batch(ds.texts)
    assert len(ids) == 200 and all(len(x) > 0 for x in ids)


def test_tfds_record_parsing_matches_tfds_decoding(imdb_data_dir):
    from seqclf.data.sources import _read_decoded, _read_records

    args = ("imdb_reviews", "test[:150]+train[-50:]", str(imdb_data_dir), "text", "label")
    fast = _read_records(*args)
    assert fast is not None and len(fast[0]) == 200
    assert fast == _read_decoded(*args)


def test_tfds_errors(tmp_path, imdb_data_dir, monkeypatch):
    with pytest.raises(UnknownDatasetError, match="'imdb_reviewz'.*did you mean 'imdb_reviews'"):
        read_tfds("imdb_reviewz", data_dir=imdb_data_dir)
    with pytest.raises(ValueError, match="not a text dataset"):
        read_tfds("mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        read_tfds("imdb_reviews", split="validation", data_dir=imdb_data_dir)
    with pytest.raises(FileNotFoundError, match="not prepared"):
        read_tfds("imdb_reviews", data_dir=tmp_path, download=False)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'seqclf\[prepare\]'.*--data-dir"):
        read_tfds("imdb_reviews", data_dir=tmp_path, download=True)


def test_resolve_data_dir(monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    assert resolve_data_dir(None) is None
    monkeypatch.setenv("TFDS_DATA_DIR", "/env/dir")
    assert resolve_data_dir(None) == "/env/dir"
    assert resolve_data_dir("/given") == "/given"


# ---------------------------------------------------------------------------------------------
# Datasets and splits
# ---------------------------------------------------------------------------------------------


def test_text_dataset_validation_and_subset():
    ds = TextDataset(["a", "b", "c"], np.array([0, 1, 1]), ["neg", "pos"])
    assert repr(ds) == "TextDataset(3 texts; neg: 1, pos: 2)"
    assert ds == TextDataset(["a", "b", "c"], [0, 1, 1], ["neg", "pos"]) != ds.subset([0, 1])
    sub = ds.subset([2, 0])
    assert sub.texts == ["c", "a"] and sub.labels.tolist() == [1, 0] and sub.classes == ds.classes
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        TextDataset(["a", "b", "c"], np.array([0, 1]), ["neg", "pos"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        TextDataset(["a"], np.array([2]), ["neg", "pos"])


def test_train_validation_split_is_seeded_stratified_and_complete():
    labels = np.array([0] * 80 + [1] * 20)
    ds = TextDataset([f"t{i}" for i in range(100)], labels, ["a", "b"])
    train, val = train_validation_split(ds, fraction=0.1, seed=3)
    assert len(train) == 90 and len(val) == 10
    assert np.bincount(val.labels).tolist() == [8, 2]  # each class keeps its share
    assert sorted(train.texts + val.texts, key=lambda t: int(t[1:])) == ds.texts
    again = train_validation_split(ds, fraction=0.1, seed=3)[1]
    assert again.texts == val.texts
    assert train_validation_split(ds, fraction=0.1, seed=4)[1].texts != val.texts
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"in \(0, 1\)"):
            train_validation_split(ds, fraction=bad)
    tiny = TextDataset(["a", "b"], np.array([0, 1]), ["x", "y"])
    with pytest.raises(ValueError, match="validation split empty"):
        train_validation_split(tiny, fraction=0.1)


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------


def _sequences(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.integers(2, 50, size=rng.integers(0, 40)).astype(np.int32) for _ in range(n)]
    out[3] = np.zeros(0, np.int32)  # an empty text
    return out


def test_truncate_pre_and_post():
    ids = np.arange(1, 11, dtype=np.int32)
    assert truncate(ids, 4).tolist() == [7, 8, 9, 10]  # "pre" keeps the end (Keras default)
    assert truncate(ids, 4, "post").tolist() == [1, 2, 3, 4]
    assert truncate(ids, 20).tolist() == ids.tolist()
    with pytest.raises(ValueError, match="max_len"):
        truncate(ids, 0)
    with pytest.raises(ValueError, match="truncating"):
        truncate(ids, 3, "middle")


def test_bucket_boundaries_and_num_batches():
    assert bucket_boundaries(200, 4) == [56, 104, 152, 200]
    assert bucket_boundaries(30, 4) == [8, 16, 24, 30]
    assert bucket_boundaries(5, 4) == [5]
    assert bucket_boundaries(64, 1) == [64]
    assert num_batches(10, 4) == 3 and num_batches(10, 4, drop_remainder=True) == 2
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(10, 0)


@pytest.mark.parametrize("order", ["input", "shuffle", "by_length"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_batches_cover_every_index_with_correct_padding(order, truncating):
    seqs = _sequences(103)
    labels = np.arange(103) % 3
    buckets = [8, 16, 24]
    seen = []
    options = {"shuffle": order == "shuffle", "sort_by_length": order == "by_length"}
    out = list(
        batches(seqs, labels, 10, max_len=20, truncating=truncating, buckets=buckets, **options)
    )
    assert len(out) == num_batches(103, 10)
    for b in out:
        tokens, lengths, index = b["tokens"], b["lengths"], b["index"]
        assert tokens.dtype == np.int32 and lengths.dtype == np.int32 and index.dtype == np.int64
        assert b["labels"].dtype == np.int32 and b["labels"].tolist() == labels[index].tolist()
        width = tokens.shape[1]
        assert width in buckets
        assert width == min(x for x in buckets if x >= lengths.max())  # the smallest that fits
        for row, i, n in zip(tokens, index.tolist(), lengths.tolist(), strict=True):
            expected = truncate(seqs[i], 20, truncating)
            assert n == len(expected) == min(len(seqs[i]), 20)
            assert row[:n].tolist() == expected.tolist()
            assert (row[n:] == PAD).all()  # padding at the end
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(103))  # every index exactly once
    if order == "input":
        assert seen == list(range(103))  # original order, for predictions
    if order == "by_length":  # shortest first, ties in input order: each batch pads least
        assert seen == sorted(range(103), key=lambda i: (min(len(seqs[i]), 20), i))
        assert sum(b["tokens"].shape[1] for b in out) < sum(
            b["tokens"].shape[1] for b in batches(seqs, None, 10, max_len=20, buckets=buckets)
        )


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    seqs = _sequences(200)

    def order(seed, epoch):
        out = batches(seqs, None, 16, max_len=32, shuffle=True, seed=seed, epoch=epoch)
        return [b["index"].tolist() for b in out]

    first = order(0, 3)
    for epoch in range(3):  # an uninterrupted run iterates earlier epochs first
        order(0, epoch)
    assert order(0, 3) == first  # a resumed run at epoch 3 sees the same batches
    assert order(0, 4) != first
    assert order(1, 3) != first
    assert [i for b in first for i in b] != list(range(200))


def test_shuffled_batches_group_similar_lengths():
    seqs = _sequences(1000, seed=1)
    lengths = np.array([len(s) for s in seqs])
    spread = [
        np.ptp(b["lengths"]) for b in batches(seqs, None, 20, max_len=64, shuffle=True, seed=0)
    ]
    random_spread = np.mean([np.ptp(lengths[i : i + 20]) for i in range(0, 1000, 20)])
    assert np.mean(spread) < random_spread / 3


def test_batches_options_and_errors():
    seqs = _sequences(25)
    out = list(batches(seqs, None, 10, max_len=16, drop_remainder=True))
    assert len(out) == 2 and "labels" not in out[0]
    assert all(b["tokens"].shape == (10, 16) for b in out)  # buckets=None: one shape, max_len
    empty_row = next(b for b in batches(seqs, None, 5, max_len=8) if 3 in b["index"])
    r = empty_row["index"].tolist().index(3)
    assert empty_row["lengths"][r] == 0 and (empty_row["tokens"][r] == 0).all()
    shuffled = list(batches(seqs, None, 10, max_len=16, shuffle=True, drop_remainder=True))
    assert len(shuffled) == 2 and all(len(b["index"]) == 10 for b in shuffled)
    with pytest.raises(ValueError, match="batch_size"):
        batches(seqs, None, 0, max_len=8)
    with pytest.raises(ValueError, match="labels must have shape"):
        batches(seqs, np.zeros(3), 4, max_len=8)
    with pytest.raises(ValueError, match="last bucket"):
        batches(seqs, None, 4, max_len=32, buckets=[8, 16])
    with pytest.raises(ValueError, match="increasing"):
        batches(seqs, None, 4, max_len=16, buckets=[16, 8])


def test_pad_batch_adds_zero_weight_rows():
    seqs = _sequences(13)
    last = list(batches(seqs, np.ones(13, np.int32), 5, max_len=8))[-1]
    padded, n_real = pad_batch(last, 5)
    assert n_real == 3
    assert padded["tokens"].shape == (5, 8) and padded["tokens"].dtype == np.int32
    assert padded["weights"].dtype == np.float32 and padded["weights"].tolist() == [1, 1, 1, 0, 0]
    assert padded["lengths"][3:].tolist() == [0, 0] and (padded["tokens"][3:] == 0).all()
    assert padded["index"].tolist() == [10, 11, 12, -1, -1]
    assert padded["labels"].tolist() == [1, 1, 1, 0, 0]
    full, n = pad_batch(next(batches(seqs, None, 5, max_len=8)), 5)
    assert n == 5 and full["weights"].tolist() == [1] * 5
    with pytest.raises(ValueError, match="more than batch_size"):
        pad_batch(full, 4)
