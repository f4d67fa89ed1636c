"""Tracked modules per architecture family (GPT-2, GPT-NeoX, Llama, Qwen2, BERT), LoRA adapters, errors.

Tiny randomly initialised models built from transformers configs (nothing is downloaded); the
end-to-end checks fit EK-FAC factors and compute pairwise scores through the engine.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from transformers.utils import logging as hf_logging

import stores
from attribution.architectures import (
    ArchitectureWarning,
    UntrackableModelError,
    is_lora_model,
    select_modules,
    tracked_modules,
)
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.sequence_tasks import SequenceClassificationTask
from attribution.tasks import CausalLMTask, linearize_conv1d, mlp_linear_modules

hf_logging.set_verbosity_error()
VOCAB, LEN = 100, 10
IDS = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
DECODER = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 64, "max_position_embeddings": 32, **IDS}


def _model(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2, **IDS)
        return linearize_conv1d(GPT2LMHeadModel(cfg)).eval()
    if kind == "gpt_neox":
        return GPTNeoXForCausalLM(GPTNeoXConfig(**DECODER)).eval()
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(num_key_value_heads=2, **DECODER)).eval()
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, **DECODER)).eval()
    if kind == "bert":
        cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32, num_labels=3, pad_token_id=0)
        return BertForSequenceClassification(cfg).eval()
    raise ValueError(kind)


def _layers(prefix: str, parts: list[str]) -> list[str]:
    return [f"{prefix}.{i}.{p}" for i in range(2) for p in parts]


LLAMA_ATTN = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
LLAMA_MLP = ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
BERT_ATTN = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]
BERT_MLP = ["intermediate.dense", "output.dense"]
EXPECTED = {  # (default = "mlp", "mlp+attention")
    "gpt2": (_layers("transformer.h", ["mlp.c_fc", "mlp.c_proj"]),
             _layers("transformer.h", ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"])),
    "gpt_neox": (_layers("gpt_neox.layers", ["mlp.dense_h_to_4h", "mlp.dense_4h_to_h"]),
                 _layers("gpt_neox.layers", ["attention.query_key_value", "attention.dense",
                                             "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"])),
    "llama": (_layers("model.layers", LLAMA_MLP), _layers("model.layers", LLAMA_ATTN + LLAMA_MLP)),
    "qwen2": (_layers("model.layers", LLAMA_MLP), _layers("model.layers", LLAMA_ATTN + LLAMA_MLP)),
    "bert": (_layers("bert.encoder.layer", BERT_MLP), _layers("bert.encoder.layer", BERT_ATTN + BERT_MLP)),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_tracked_modules_per_family(kind: str) -> None:
    model = _model(kind)
    mlp, both = EXPECTED[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArchitectureWarning)  # a known family: no fallback warning
        sel = select_modules(model)
        assert sel.modules == mlp and sel.recognised_by == "model_type" and not sel.lora
        assert tracked_modules(model, "mlp+attention") == both
        assert tracked_modules(model, "attention") == [n for n in both if n not in mlp]
        assert tracked_modules(model, "all") == both  # every Linear but the output head
    assert mlp_linear_modules(model) == mlp  # the old entry point delegates
    head = ["bert.pooler.dense", "classifier"] if kind == "bert" else ["lm_head"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ArchitectureWarning)  # GPT-2's lm_head is tied to wte
        assert tracked_modules(model, "all", include_head=True) == both + head


def test_unknown_model_type_is_recognised_by_structure_or_name_hints() -> None:
    cfg = Qwen3Config(num_key_value_heads=2, head_dim=16, **DECODER)  # not in the table, Llama's layout
    sel = select_modules(Qwen3ForCausalLM(cfg))
    assert sel.family == "llama" and sel.recognised_by == "structure"
    assert sel.modules == _layers("model.layers", LLAMA_MLP)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.ModuleDict({"ffn": nn.Linear(4, 8), "mix": nn.Linear(4, 4)})])
            self.lm_head = nn.Linear(4, 10)

    with pytest.warns(ArchitectureWarning, match="unknown architecture.*name hints"):
        sel = select_modules(Custom())
    assert sel.modules == ["blocks.0.ffn"] and sel.recognised_by == "name hints" and sel.family is None
    with pytest.warns(ArchitectureWarning):
        assert tracked_modules(Custom(), "all") == ["blocks.0.ffn", "blocks.0.mix"]


def test_untrackable_models_get_an_error_listing_what_was_found() -> None:
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2, **IDS))
    with pytest.raises(UntrackableModelError, match="Conv1D layers .*linearize_conv1d") as err:
        select_modules(gpt2)
    msg = str(err.value)
    assert "Conv1D x8" in msg and "transformer.h.0.mlp.c_fc" in msg and "Linear x1 (lm_head)" in msg
    with pytest.raises(ValueError, match="Conv1D"):  # still a ValueError, as mlp_linear_modules raised
        mlp_linear_modules(gpt2)

    convs = nn.Sequential(nn.Embedding(10, 4), nn.Conv1d(4, 4, 3))
    with pytest.raises(UntrackableModelError, match=r"Embedding x1 \(0\).*Conv1d x1 \(1\).*tracked_modules="):
        select_modules(convs)
    with pytest.raises(ValueError, match="scope must be one of"):
        select_modules(_model("llama"), scope="everything")


class Tokens(Dataset):
    """Random token sequences (some right-padded) with labels: LM labels, or one class per sequence."""

    def __init__(self, n: int, seed: int, classes: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(1, VOCAB, (n, LEN), generator=g)
        self.mask = torch.ones(n, LEN, dtype=torch.long)
        self.mask[::3, LEN - 3:] = 0
        self.x = self.x * self.mask
        self.y = torch.randint(0, classes, (n,), generator=g) if classes else self.x.masked_fill(self.mask == 0, -100)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "attention_mask": self.mask[i], "labels": self.y[i]}


def _scores(tmp_path: Path, model: nn.Module, task, train: Dataset, queries: Dataset,
            train_ids: list[str] | None = None) -> tuple[np.ndarray, InfluenceEngine]:
    ids = train_ids or [f"t{i}" for i in range(len(train))]
    qids = [f"q{i}" for i in range(len(queries))]
    store = stores.open(tmp_path / "s")
    engine = InfluenceEngine(store, model, task, EngineConfig(batch_size=8, shard_size=64))
    run = engine.pairwise_scores("b", Samples(train, ids), Samples(queries, qids))
    df = store.read_scores(run.run_id).sort(["query_id", "sample_id"])
    assert store.get_run(run.run_id)["config"]["tracked_modules"] == task.get_influence_tracked_modules()
    order = {s: i for i, s in enumerate(ids)}
    out = np.zeros((len(qids), len(ids)))
    for q, s, v in df.select("query_id", "sample_id", "score").iter_rows():
        out[int(q[1:]), order[s]] = v
    return out, engine


def test_llama_causal_lm_end_to_end(tmp_path: Path) -> None:
    model = _model("llama")
    task = CausalLMTask(model)
    assert task.get_influence_tracked_modules() == EXPECTED["llama"][0]
    scores, _ = _scores(tmp_path, model, task, Tokens(16, 0), Tokens(3, 1))
    assert np.isfinite(scores).all() and np.abs(scores).max() > 0
    # the selection is the same once kronfluence has wrapped the tracked modules
    assert tracked_modules(model) == EXPECTED["llama"][0]


def test_bert_sequence_classifier_end_to_end(tmp_path: Path) -> None:
    model = _model("bert")
    task = SequenceClassificationTask(model, include_head=True)
    assert task.get_influence_tracked_modules() == EXPECTED["bert"][0] + ["bert.pooler.dense", "classifier"]
    train, queries = Tokens(16, 0, classes=3), Tokens(3, 1, classes=3)
    batch = {k: torch.stack([train[i][k] for i in range(4)]) for k in train[0]}
    per_sample = task.per_sample_loss(batch, model)
    assert per_sample.shape == (4,)
    assert task.compute_train_loss(batch, model).item() == pytest.approx(per_sample.sum().item(), rel=1e-5)
    logits = task.logits(model, batch)
    true = logits.gather(1, batch["labels"][:, None]).squeeze(1)
    others = logits.scatter(1, batch["labels"][:, None], float("-inf")).logsumexp(-1)
    assert task.compute_measurement(batch, model).item() == pytest.approx((others - true).sum().item(), rel=1e-5)
    scores, _ = _scores(tmp_path, model, task, train, queries)
    assert np.isfinite(scores).all() and np.abs(scores).max() > 0


def _lora_llama(init_lora_weights: bool = False) -> nn.Module:
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=init_lora_weights)  # False: random lora_B, as after training
    return peft.get_peft_model(_model("llama"), config).eval()


LORA = [f"base_model.model.model.layers.{i}.self_attn.{p}.lora_{ab}.default"
        for i in range(2) for p in ("q_proj", "v_proj") for ab in "AB"]


def test_lora_adapters_are_tracked_not_base_weights(tmp_path: Path) -> None:
    model = _lora_llama()
    assert is_lora_model(model) and not is_lora_model(_model("llama"))
    sel = select_modules(model)
    assert sel.modules == LORA and sel.lora and sel.family == "llama"
    assert tracked_modules(model, "attention") == LORA
    with pytest.raises(UntrackableModelError, match="none of its LoRA adapters .* in scope 'mlp'"):
        select_modules(model, "mlp")
    task = CausalLMTask(model)
    assert task.get_influence_tracked_modules() == LORA
    train, queries = Tokens(16, 0), Tokens(3, 1)
    dup = torch.utils.data.ConcatDataset([torch.utils.data.Subset(queries, [0]), train])
    ids = ["dup"] + [f"t{i}" for i in range(16)]
    scores, engine = _scores(tmp_path, model, task, dup, queries, ids)
    assert np.isfinite(scores).all() and np.abs(scores).max() > 0
    assert "dup" in [ids[j] for j in np.argsort(-scores[0])[:3]]  # a copy of the query ranks near the top
    assert tracked_modules(engine.model) == LORA  # after prepare_model froze every weight


def test_untrained_and_frozen_lora_adapters() -> None:
    fresh = _lora_llama(init_lora_weights=True)  # lora_B = 0: lora_A's gradients vanish
    with pytest.warns(ArchitectureWarning, match="lora_B is zero in 4 layers"):
        assert tracked_modules(fresh) == [n for n in LORA if "lora_B" in n]
    frozen = _lora_llama()
    for p in frozen.parameters():  # as loaded for inference (PeftModel.from_pretrained default)
        p.requires_grad_(False)
    assert tracked_modules(frozen) == LORA
