"""Byte-level BPE tokenizers trained on a store dataset: a corpus's own vocabulary, no hub download.

The small GPT-2s of the pipelines need a tokenizer that fits their data: characters are too
fine for prose (every word becomes many positions) and no pretrained vocabulary may be
downloaded. :func:`train_bpe_tokenizer` trains a byte-level BPE (GPT-2's scheme: any text
encodes, no unknown characters) with the ``tokenizers`` library; the same texts and settings
give the same vocabulary and merges. :func:`bpe_tokenizer_for` trains one on a store dataset
once and caches it under the store's ``tokenizers`` artifacts, keyed by the dataset's content
fingerprint and the settings, so a second call (or a resumed pipeline) loads it instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import stores
from attribution.data import EOS, PAD, UNK
from attribution.keys import short_digest
from stores.atomic import atomic_folder

#: The special tokens every BPE tokenizer here has, in id order (0, 1, 2).
SPECIAL_TOKENS = (PAD, UNK, EOS)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 4096, *, min_frequency: int = 2,
                        length: int | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (pad/unk/eos = ids 0/1/2).

    Why byte-level: every string encodes (the 256 byte symbols are always in the vocabulary), so
    benchmark items or code never hit an unknown token. ``vocab_size`` counts the special tokens
    and the byte alphabet; a pair is merged only if seen ``min_frequency`` times. No prefix space
    is added and no special token is inserted when encoding, so ``decode(encode(t)) == t``.
    Deterministic: the same texts in the same order and settings give the same tokenizer.
    ``length`` (the number of texts, if known) only sizes the trainer's buffers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256} (special tokens "
                         f"+ the 256 byte symbols), got {vocab_size}")
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_strings(texts), trainer=trainer, length=length)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK,
                                   eos_token=EOS, clean_up_tokenization_spaces=False)


def _strings(texts: Iterable[str]) -> Iterator[str]:
    """The texts, checked to be strings (a clear error instead of a Rust panic); nulls skipped."""
    for i, text in enumerate(texts):
        if text is None:
            continue
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected a string")
        yield text


def text_fields_of(store: stores.Store, dataset: str,
                   fields: Sequence[str] | None = None) -> list[str]:
    """Fields a tokenizer learns from: ``fields``, else the text role, else prompt + completion."""
    info = store.dataset_info(dataset)
    by_role = {f["role"]: f["name"] for f in info["fields"] if f.get("role")}
    names = {f["name"] for f in info["fields"]}
    if fields:
        missing = [f for f in fields if f not in names]
        if missing:
            raise stores.StoreError(f"dataset {dataset!r} has no field(s) {', '.join(missing)}; "
                                    f"fields: {', '.join(sorted(names))}")
        return list(fields)
    if "text" in by_role:
        return [by_role["text"]]
    if "prompt" in by_role and "completion" in by_role:
        return [by_role["prompt"], by_role["completion"]]
    raise stores.StoreError(f"dataset {dataset!r} has no text or prompt/completion role to train a "
                            f"tokenizer on; name the fields (fields: {', '.join(sorted(names))})")


def tokenizer_cache_key(store: stores.Store, dataset: str, fields: Sequence[str], vocab_size: int,
                        min_frequency: int) -> str:
    """A dataset's tokenizer cache key: content fingerprint, fields, settings, training code."""
    import tokenizers

    fingerprint = store.dataset_info(dataset)["fingerprint"]
    code = inspect.getsource(train_bpe_tokenizer)
    return short_digest("bpe", fingerprint, list(fields), vocab_size, min_frequency, code,
                        tokenizers.__version__)


def bpe_tokenizer_for(store: stores.Store, dataset: str, fields: Sequence[str] | None = None,
                      vocab_size: int = 4096, *, min_frequency: int = 2):
    """The BPE tokenizer of ``dataset`` (trained on its ``fields``), trained once and then reused.

    Saved with ``save_pretrained`` under ``store.artifact_dir("tokenizers")`` as
    ``<dataset>-<key>``, the key being :func:`tokenizer_cache_key` (the data's content, not its
    name: the same samples under another name reuse it). The folder is written atomically (a
    temp folder renamed into place), so a killed run never leaves one half written. Fields:
    :func:`text_fields_of` (several are read as separate texts).
    """
    fields = text_fields_of(store, dataset, fields)
    key = tokenizer_cache_key(store, dataset, fields, vocab_size, min_frequency)
    root = store.artifact_dir("tokenizers")
    found = sorted(p for p in root.glob(f"*-{key}") if (p / "tokenizer.json").is_file())
    if found:
        return _load(found[0])
    n = store.dataset_info(dataset)["n_samples"] * len(fields)

    def texts() -> Iterator[str]:
        for batch in store.iter_samples(dataset, fields, batch_rows=10_000):
            for field in fields:
                yield from (t for t in batch[field].to_list() if t)

    tok = train_bpe_tokenizer(texts(), vocab_size, min_frequency=min_frequency, length=n)
    folder = root / f"{dataset}-{key}"
    with atomic_folder(folder) as tmp:
        tok.save_pretrained(tmp)
    return _load(folder)


def _load(folder: Path):
    """A cached tokenizer, loaded as model folders are (both calls give the same object type)."""
    from attribution.models import load_tokenizer

    return load_tokenizer(folder)


__all__ = ["SPECIAL_TOKENS", "bpe_tokenizer_for", "text_fields_of", "tokenizer_cache_key",
           "train_bpe_tokenizer"]
