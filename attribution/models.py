"""Load models by local path (never from a hub) and make them trackable by kronfluence."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .tasks import linearize_conv1d


def load_causal_lm(path: str | Path, device: str = "cpu") -> nn.Module:
    """A ``transformers`` causal LM saved with ``save_pretrained`` at a local ``path``.

    GPT-2's Conv1D layers are converted to ``nn.Linear`` (same outputs) so influence can track
    them. Refuses anything that is not a local folder: models are never downloaded at run time.
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a local folder written by save_pretrained (no hub downloads)")
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    return linearize_conv1d(model).to(device).eval()


def load_tokenizer(path: str | Path):
    """A tokenizer saved with ``save_pretrained`` at a local ``path``."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a local tokenizer folder (no hub downloads)")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
