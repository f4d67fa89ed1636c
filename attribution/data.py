"""Turn store datasets into model batches: prompt-masked causal-LM examples and a char tokenizer.

Any Hugging Face tokenizer works (load it by local path); :func:`char_tokenizer` builds a
character-level one for generated data (arithmetic traces), saved and loaded like any other.
:class:`Samples` carries a dataset to the engine together with its sample ids and store dataset
name; :func:`completion_samples` and :func:`tabular_samples` build one from a store dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

import stores

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"


@dataclass(frozen=True)
class Samples:
    """A torch dataset with the sample id of each item and, when it came from a store, its name.

    What the engine scores (training samples or queries): ``data[i]`` is the model input of the
    sample ``ids[i]``; ``dataset`` names the store dataset, recorded as the dataset of the runs
    written for these samples (None for data made in memory).
    """

    data: Dataset
    ids: list[str] = field(repr=False)
    dataset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", list(self.ids))
        if len(self.data) != len(self.ids):  # type: ignore[arg-type]
            where = f" {self.dataset!r}" if self.dataset else ""
            raise ValueError(f"dataset{where} has {len(self.data)} samples but {len(self.ids)} ids were given")  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int]) -> Samples:
        """The samples at ``indices`` (a ``torch.utils.data.Subset`` view), same dataset name."""
        indices = list(indices)
        return Samples(torch.utils.data.Subset(self.data, indices), [self.ids[i] for i in indices], self.dataset)


def char_tokenizer(alphabet: str):
    """A fast Hugging Face tokenizer with one token per character of ``alphabet`` (+ pad/unk/eos)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(alphabet))
    vocab = {PAD: 0, UNK: 1, EOS: 2} | {c: i + 3 for i, c in enumerate(chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()  # decode to the characters themselves, not space-joined tokens
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=EOS)


class CompletionDataset(Dataset):
    """Prompt/completion pairs as fixed-length ``input_ids``, ``attention_mask`` and ``labels``.

    Labels are -100 on prompt and padding tokens, so losses and measurements cover the
    completion only (plain text: pass empty prompts). Sequences longer than ``max_length`` keep
    the prompt and lose the end of the completion; :attr:`n_truncated` counts them.
    """

    def __init__(self, prompts: Sequence[str], completions: Sequence[str], tokenizer, max_length: int = 256,
                 add_eos: bool = True):
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token")
        p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
        eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []
        n = len(p_ids)
        self.input_ids = torch.full((n, max_length), pad_id, dtype=torch.long)
        self.attention_mask = torch.zeros((n, max_length), dtype=torch.long)
        self.labels = torch.full((n, max_length), -100, dtype=torch.long)
        self.n_truncated = 0
        for i, (p, c) in enumerate(zip(p_ids, c_ids, strict=True)):
            if len(p) >= max_length:
                raise ValueError(f"sample {i}: the prompt alone has {len(p)} tokens, max_length is {max_length}")
            seq = (p + c + eos)[:max_length]
            self.n_truncated += len(p) + len(c) + len(eos) > max_length
            self.input_ids[i, : len(seq)] = torch.tensor(seq)
            self.attention_mask[i, : len(seq)] = 1
            self.labels[i, len(p) : len(seq)] = torch.tensor(seq[len(p) :])

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i], "labels": self.labels[i]}


def completion_dataset_from_store(
    store: stores.Store, dataset: str, tokenizer, max_length: int = 256, sample_ids: Sequence[str] | None = None
) -> tuple[CompletionDataset, list[str]]:
    """A store dataset (prompt/completion, or text) as a :class:`CompletionDataset` and its ids.

    ``sample_ids`` selects and orders a subset (e.g. a behaviour's query ids).
    """
    info = store.dataset_info(dataset)
    roles = {f["role"] for f in info["fields"] if f["role"]}
    if {"prompt", "completion"} <= roles:
        cols = ["sample_id", "prompt", "completion"]
    elif "text" in roles:
        cols = ["sample_id", "text"]
    else:
        raise stores.StoreError(f"dataset {dataset!r} has no prompt/completion or text fields to train on")
    df = store.read_samples(dataset, columns=cols)
    if sample_ids is not None:
        df = _select(df, sample_ids, dataset)
    if "text" in cols:
        prompts, completions = [""] * df.height, df["text"].to_list()
    else:
        prompts, completions = df["prompt"].to_list(), df["completion"].to_list()
    return CompletionDataset(prompts, completions, tokenizer, max_length), df["sample_id"].to_list()


def tabular_dataset_from_store(
    store: stores.Store, dataset: str, features: Sequence[str] | None = None, label: str = "label",
    sample_ids: Sequence[str] | None = None, regression: bool = False,
) -> tuple[torch.utils.data.TensorDataset, list[str], list[str]]:
    """A tabular store dataset as ``(features, label)`` tensors, its ids and the feature names.

    ``features`` defaults to every numeric field except the label. Labels are class indices
    (integers) for classifiers and floats for regression. Nulls are an error naming the column.
    """
    import polars as pl

    info = store.dataset_info(dataset)
    fields = {f["name"]: f for f in info["fields"]}
    if label not in fields:
        raise stores.StoreError(f"dataset {dataset!r} has no label field {label!r}; fields: {', '.join(fields)}")
    df = store.read_samples(dataset)
    if features is None:
        features = [c for c in fields if c != label and df.schema[c].is_numeric()]
    unknown = [c for c in features if c not in df.columns]
    if unknown:
        raise stores.StoreError(f"dataset {dataset!r} has no field(s) {', '.join(unknown)}; fields: {', '.join(fields)}")
    if not features:
        raise stores.StoreError(f"dataset {dataset!r} has no numeric feature fields besides {label!r}")
    if sample_ids is not None:
        df = _select(df, sample_ids, dataset)
    for c in [*features, label]:
        if df[c].null_count():
            raise stores.StoreError(f"dataset {dataset!r}: column {c!r} has {df[c].null_count()} nulls")
    x = torch.tensor(df.select([pl.col(c).cast(pl.Float32) for c in features]).to_numpy())
    y = torch.tensor(df[label].to_numpy(), dtype=torch.float32 if regression else torch.long)
    return torch.utils.data.TensorDataset(x, y), df["sample_id"].to_list(), list(features)


def completion_samples(
    store: stores.Store, dataset: str, tokenizer, max_length: int = 256, ids: Sequence[str] | None = None
) -> Samples:
    """A store dataset (prompt/completion, or text) as :class:`Samples` of a :class:`CompletionDataset`.

    ``ids`` selects and orders a subset (e.g. a behaviour's query ids); see
    :func:`completion_dataset_from_store`.
    """
    data, sample_ids = completion_dataset_from_store(store, dataset, tokenizer, max_length, ids)
    return Samples(data, sample_ids, dataset)


def tabular_samples(
    store: stores.Store, dataset: str, features: Sequence[str] | None = None, label: str = "label",
    ids: Sequence[str] | None = None, regression: bool = False,
) -> tuple[Samples, list[str]]:
    """A tabular store dataset as :class:`Samples` of ``(features, label)`` tensors, and the feature names.

    See :func:`tabular_dataset_from_store` for the defaults and the errors.
    """
    data, sample_ids, names = tabular_dataset_from_store(store, dataset, features, label, ids, regression)
    return Samples(data, sample_ids, dataset), names


def _select(df, sample_ids: Sequence[str], dataset: str):
    """Rows of ``df`` for ``sample_ids``, in that order; names the dataset if an id is missing."""
    order = {sid: i for i, sid in enumerate(df["sample_id"].to_list())}
    missing = [s for s in sample_ids if s not in order]
    if missing:
        raise stores.StoreError(f"{len(missing)} ids not in dataset {dataset!r}, e.g. {missing[0]}")
    return df[[order[s] for s in sample_ids]]
