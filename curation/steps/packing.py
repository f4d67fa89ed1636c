"""Pack documents into fixed-length training rows: pre-training style, matched token budgets.

Continual pre-training compares mixtures at the same number of training tokens. Rows filled with
whole documents (each followed by the end-of-text token) make every step see about the same
number of tokens whatever the documents' lengths, so a mixture of short junk posts and long
articles is trained on the same budget as clean text alone. A document longer than a row is cut
into row-sized pieces, each starting a row; documents are never split across the end of a row
otherwise, so every row starts at a document boundary (as the prompts of an evaluation do).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from curation.actions.recipes import CompletionTensors


def pack_documents(texts: Sequence[str], tokenizer, length: int) -> CompletionTensors:
    """Rows of ``length`` tokens holding whole documents in order, each ended by eos; loss on every real token.

    Greedy first-fit in the given order: a document goes into the current row if it fits, else it
    starts a new row (pieces of a too-long document each fill a row). Padding gets label -100 and
    attention mask 0.
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if len(texts) else []
    rows: list[list[int]] = []
    current: list[int] = []
    for ids in encoded:
        doc = list(ids) + [eos]
        if len(doc) > length:
            if current:
                rows.append(current)
                current = []
            rows.extend(doc[i : i + length] for i in range(0, len(doc), length))
            if len(rows[-1]) < length:
                current = rows.pop()
            continue
        if len(current) + len(doc) > length:
            rows.append(current)
            current = []
        current.extend(doc)
    if current:
        rows.append(current)
    n = len(rows)
    input_ids = torch.full((n, length), pad, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    labels = torch.where(mask.bool(), input_ids, torch.full_like(input_ids, -100))
    return CompletionTensors(input_ids, mask, labels)


__all__ = ["pack_documents"]
