"""Which layers influence is computed over, for each model family users bring (and LoRA adapters).

kronfluence tracks ``nn.Linear`` (and ``nn.Conv2d``) modules named by the task. Which ones to name
depends on the architecture: :data:`FAMILIES` holds the layout of GPT-2 (after
:func:`attribution.tasks.linearize_conv1d`), GPT-NeoX (Pythia), Llama / Qwen2 and BERT-style
encoders, recognised by ``config.model_type`` or, failing that, by their module names. A model of
no known family falls back to name hints (``mlp``, ``attn``...) and says so (a warning, and
``recognised_by="name hints"`` in the :class:`ModuleSelection`).

Scopes: ``"mlp"`` (the feed-forward Linear layers of each block, the default and what
:class:`attribution.tasks.CausalLMTask` has always tracked), ``"attention"``, ``"mlp+attention"``
and ``"all"`` (every Linear but the output head). Output heads (``lm_head``, a classifier) are
tracked only with ``include_head=True``: an LM head is usually tied to the input embeddings and
its vocabulary-sized factors dwarf the rest.

A peft LoRA model is tracked through its adapters: the active adapters' ``lora_A`` / ``lora_B``
Linear modules (trainable ones when some are marked trainable), never the frozen base weights.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from kronfluence.module.tracked_module import TrackedModule
from torch import nn

SCOPES = ("mlp", "attention", "mlp+attention", "all")
MLP_NAME_HINTS = ("mlp", "ffn", "feed_forward", "feedforward")
ATTENTION_NAME_HINTS = ("attn", "attention")
HEAD_NAME_HINTS = ("lm_head", "embed_out", "classifier", "score", "pooler")
_TRACKABLE = (nn.Linear, nn.Conv2d)  # what kronfluence 1.0.1 can wrap
_LORA = re.compile(r"^(?P<layer>.+)\.lora_(?P<ab>[AB])\.(?P<adapter>[^.]+)$")
_SAVED = re.compile(r"^(?P<layer>.+)\.modules_to_save\.(?P<adapter>[^.]+)$")  # peft's trained head copies


class ArchitectureWarning(UserWarning):
    """The tracked modules were chosen by a fallback or left something out: check them."""


class UntrackableModelError(ValueError):
    """No module kronfluence can track matches the requested scope; the message lists what was found."""


@dataclass(frozen=True)
class Family:
    """The layout of an architecture family: regular expressions on module names, per part.

    Each pattern must match the *end* of a module's name (any prefix, e.g. peft's
    ``base_model.model.``, is allowed before it).
    """

    name: str
    model_types: tuple[str, ...]
    mlp: str
    attention: str
    head: str

    def matches(self, part: str, name: str) -> bool:
        """Whether module ``name`` belongs to ``part`` ("mlp", "attention" or "head") of this family."""
        return re.search(rf"(^|\.)(?:{getattr(self, part)})$", name) is not None


#: The families recognised by layout. Llama's layout is shared by Qwen2 and Mistral.
FAMILIES = (
    Family("gpt2", ("gpt2",), mlp=r"mlp\.(c_fc|c_proj)", attention=r"attn\.(c_attn|c_proj)",
           head=r"lm_head|score"),
    Family("gpt_neox", ("gpt_neox",), mlp=r"mlp\.(dense_h_to_4h|dense_4h_to_h)",
           attention=r"attention\.(query_key_value|dense)", head=r"lm_head|embed_out|score"),
    Family("llama", ("llama", "qwen2", "mistral"), mlp=r"mlp\.(gate_proj|up_proj|down_proj)",
           attention=r"self_attn\.(q_proj|k_proj|v_proj|o_proj)", head=r"lm_head|score"),
    Family("bert", ("bert", "roberta", "xlm-roberta"), mlp=r"layer\.\d+\.(intermediate|output)\.dense",
           attention=r"layer\.\d+\.attention\.(self\.(query|key|value)|output\.dense)",
           head=r"pooler\.dense|classifier|classifier\.(dense|out_proj)|cls\.predictions\.transform\.dense|cls\.predictions\.decoder"),
)


@dataclass(frozen=True)
class ModuleSelection:
    """The modules chosen for a model and why: what :func:`select_modules` returns.

    ``recognised_by`` is ``"model_type"`` (``config.model_type`` is in :data:`FAMILIES`),
    ``"structure"`` (its module names follow a known family's layout) or ``"name hints"`` (an
    unknown architecture: check ``modules``). ``notes`` say what was left out and why.
    """

    modules: list[str]
    family: str | None
    model_type: str | None
    scope: str
    recognised_by: str
    lora: bool = False
    notes: list[str] = field(default_factory=list)


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every leaf module, seen through kronfluence's ``TrackedModule`` wrappers.

    A module kronfluence has wrapped is reported under its own name with its original type, so
    the selection is the same before and after :func:`kronfluence.analyzer.prepare_model`.
    """
    out, inside = [], []
    for name, module in model.named_modules():
        if any(name.startswith(p) for p in inside):
            continue
        if isinstance(module, TrackedModule):
            out.append((name, module.original_module))
            inside.append(f"{name}.")
        elif next(module.children(), None) is None:
            out.append((name, module))
    return out


def model_family(model: nn.Module) -> tuple[Family | None, str | None, str]:
    """``(family, model_type, recognised_by)`` of a model (family None when unknown).

    ``config.model_type`` decides when it is known and its layout is there; otherwise the family
    whose layout matches the most Linear modules (``recognised_by="structure"``), else None (``"name hints"``).
    """
    config = getattr(model, "config", None)  # a peft model forwards .config to the wrapped model
    model_type = getattr(config, "model_type", None)
    names = [n for n, m in leaf_modules(model) if isinstance(m, _TRACKABLE) or type(m).__name__ == "Conv1D"]
    for fam in FAMILIES:  # a known model_type whose layout is not there (renamed layers): by structure
        if model_type in fam.model_types and any(fam.matches("mlp", n) for n in names):
            return fam, model_type, "model_type"
    counts = {fam.name: sum(fam.matches(p, n) for n in names for p in ("mlp", "attention")) for fam in FAMILIES}
    best = max(FAMILIES, key=lambda f: counts[f.name])
    if counts[best.name] and any(best.matches("mlp", n) for n in names):
        return best, model_type, "structure"
    return None, model_type, "name hints"


def _in_scope(fam: Family | None, name: str, scope: str, include_head: bool) -> bool:
    """Whether module ``name`` is in ``scope`` (by the family's layout, or by name hints)."""
    low = name.lower()
    if fam is not None:
        head = fam.matches("head", name)
        parts = {"mlp": fam.matches("mlp", name), "attention": fam.matches("attention", name)}
    else:
        head = any(h in low for h in HEAD_NAME_HINTS)
        parts = {"mlp": any(h in low for h in MLP_NAME_HINTS),
                 "attention": any(h in low for h in ATTENTION_NAME_HINTS) and not head}
    if head:
        return include_head
    if scope == "all":
        return True
    return any(parts[p] for p in scope.split("+"))


def _found(leaves: list[tuple[str, nn.Module]]) -> str:
    """What a model holds, for error messages: each module type with a count and a few names."""
    by_type: dict[str, list[str]] = {}
    for name, module in leaves:
        if any(True for _ in module.parameters(recurse=False)):
            by_type.setdefault(type(module).__name__, []).append(name)
    if not by_type:
        return "no modules with parameters"
    return "; ".join(f"{t} x{len(ns)} ({', '.join(ns[:3])}{', ...' if len(ns) > 3 else ''})"
                     for t, ns in sorted(by_type.items(), key=lambda kv: -len(kv[1])))


def _untrackable(model: nn.Module, what: str, leaves: list[tuple[str, nn.Module]], fix: str) -> UntrackableModelError:
    return UntrackableModelError(f"{type(model).__name__}: {what}. Found: {_found(leaves)}. {fix}")


def select_modules(model: nn.Module, scope: str | None = None, include_head: bool = False) -> ModuleSelection:
    """The modules kronfluence should track in ``model``, with its family and notes.

    ``scope`` is one of :data:`SCOPES`; None means ``"mlp"`` for a plain model and every active
    adapter for a LoRA model. Warns (:class:`ArchitectureWarning`) when the architecture is
    unknown (name hints were used) or an adapter's ``lora_A`` is left out (its ``lora_B`` is
    zero, as in a freshly initialised adapter, so its gradients vanish and kronfluence's damped
    inverse of them is NaN). Raises :class:`UntrackableModelError` listing the model's module
    types and names when nothing trackable is in scope (e.g. GPT-2's unconverted ``Conv1D``).
    """
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)} (or None), not {scope!r}")
    leaves = leaf_modules(model)
    fam, model_type, how = model_family(model)
    lora = [(n, m) for n, m in leaves if _LORA.match(n)]
    if lora:
        return _select_lora(model, leaves, lora, fam, model_type, how, scope, include_head)
    scope = scope or "mlp"
    picked = [(n, m) for n, m in leaves if _in_scope(fam, n, scope, include_head)
              and any(True for _ in m.parameters(recurse=False))]
    modules = [n for n, m in picked if isinstance(m, _TRACKABLE)]
    conv1d = [n for n, m in picked if type(m).__name__ == "Conv1D"] or (
        [] if modules else [n for n, m in leaves if type(m).__name__ == "Conv1D"])
    if conv1d:
        raise _untrackable(model, f"its layers in scope {scope!r} include transformers Conv1D layers "
                           f"({', '.join(conv1d[:3])}, ...), which kronfluence cannot track", leaves,
                           "It has Conv1D layers (GPT-2): convert them with attribution.tasks.linearize_conv1d(model) "
                           "first (attribution.models.load_causal_lm does it on load).")
    if not modules:
        where = fam.name if fam else f"name hints ({'/'.join(MLP_NAME_HINTS + ATTENTION_NAME_HINTS)})"
        raise _untrackable(model, f"no nn.Linear modules in scope {scope!r} by the layout of {where}", leaves,
                           f"Pass tracked_modules=[...] with the names of nn.Linear/nn.Conv2d modules, or a wider "
                           f"scope ({', '.join(SCOPES)}).")
    notes = []
    if fam is None:
        notes.append(f"unknown architecture (model_type {model_type!r}): modules chosen by name hints; check them "
                     "or pass tracked_modules explicitly")
    if include_head:
        notes += _tied_head_notes(model, fam, modules)
    for note in notes:
        warnings.warn(note, ArchitectureWarning, stacklevel=2)
    return ModuleSelection(modules, fam.name if fam else None, model_type, scope, how, False, notes)


def _tied_head_notes(model: nn.Module, fam: Family | None, modules: list[str]) -> list[str]:
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if emb is None:
        return []
    named = dict(leaf_modules(model))
    tied = [n for n in modules if getattr(named[n], "weight", None) is emb.weight]
    return [f"{', '.join(tied)} shares its weight with the input embeddings; only its use as the output "
            "head is seen by the influence scores"] if tied else []


def _select_lora(model, leaves, lora, fam, model_type, how, scope, include_head) -> ModuleSelection:
    """The LoRA branch of :func:`select_modules`: active adapters' lora_A/lora_B, not base weights."""
    notes: list[str] = []
    named = dict(model.named_modules())
    active: list[tuple[str, nn.Module, str, str]] = []  # (name, module, layer, "A"/"B")
    dora = False
    for name, module in lora:
        m = _LORA.match(name)
        layer = named[m["layer"]]
        if getattr(layer, "merged", False):
            raise _untrackable(model, f"its LoRA adapter in {m['layer']} is merged into the base weights, so its "
                               "lora_A/lora_B are not used by the forward pass", leaves,
                               "Call model.unmerge_adapter() before attributing.")
        on = _as_list(getattr(layer, "active_adapters", [m["adapter"]]))
        if m["adapter"] in on and not getattr(layer, "disable_adapters", False):
            active.append((name, module, m["layer"], m["ab"]))
            dora = dora or bool(getattr(layer, "use_dora", {}).get(m["adapter"], False))
    if dora:
        notes.append("DoRA adapters: the magnitude's dependence on the lora weights bypasses the tracked modules, "
                     "so their influence is approximate")
    if scope is not None:
        active = [a for a in active if _in_scope(fam, a[2], scope, include_head)]
    trainable = [a for a in active if any(p.requires_grad for p in a[1].parameters())]
    if trainable:  # none trainable: frozen for inference, or after kronfluence's prepare_model
        active = trainable
    zero_b = sorted({layer for _, m, layer, ab in active if ab == "B" and not m.weight.any()})
    if zero_b:
        notes.append(f"lora_B is zero in {len(zero_b)} layers (an untrained adapter, e.g. {zero_b[0]}): their "
                     "lora_A gradients are zero and kronfluence's inverse of them NaN, so lora_A is left out there")
        active = [a for a in active if not (a[3] == "A" and a[2] in zero_b)]
    modules = [n for n, m, _, _ in active if isinstance(m, _TRACKABLE)]
    saved = [n for n, m in leaves if _SAVED.match(n) and isinstance(m, _TRACKABLE)
             and _SAVED.match(n)["adapter"] in _as_list(getattr(named[_SAVED.match(n)["layer"]], "active_adapters", []))
             and (not trainable or any(p.requires_grad for p in m.parameters()))]
    if saved and include_head:
        modules += saved
    elif saved:
        notes.append(f"trainable copies of head modules ({', '.join(saved[:3])}) not tracked; pass include_head=True")
    if not modules:
        raise _untrackable(model, f"none of its LoRA adapters is active and in scope {scope!r}", leaves,
                           "Use scope=None (every active adapter), or activate an adapter (model.set_adapter).")
    for note in notes:
        warnings.warn(note, ArchitectureWarning, stacklevel=3)
    return ModuleSelection(modules, fam.name if fam else None, model_type, scope or "lora", how, True, notes)


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def tracked_modules(model: nn.Module, scope: str | None = None, include_head: bool = False) -> list[str]:
    """Names of the modules kronfluence should track in ``model`` (see :func:`select_modules`).

    The default: the feed-forward Linear layers of every block, or a LoRA model's active
    adapters. Pass the result as ``tracked_modules`` of a task.
    """
    return select_modules(model, scope, include_head).modules


def is_lora_model(model: nn.Module) -> bool:
    """Whether ``model`` holds peft LoRA adapters (whose lora_A/lora_B are then what is tracked)."""
    return any(_LORA.match(n) for n, _ in leaf_modules(model))


__all__ = [
    "FAMILIES", "SCOPES", "ArchitectureWarning", "Family", "ModuleSelection", "UntrackableModelError",
    "is_lora_model", "leaf_modules", "model_family", "select_modules", "tracked_modules",
]
