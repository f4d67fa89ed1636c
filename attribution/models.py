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


class MLP(nn.Module):
    """A plain MLP for tabular classification or regression, saved as config.json + safetensors.

    The format the CLI attributes for tabular datasets: weights in safetensors (never pickles)
    and the shape in JSON, so a model trained anywhere can be scored by ``curation attribute``.
    """

    def __init__(self, n_in: int, hidden: list[int], n_out: int, task: str = "classifier"):
        super().__init__()
        if task not in ("classifier", "regression"):
            raise ValueError(f"task must be 'classifier' or 'regression', not {task!r}")
        self.config = {"kind": "mlp", "n_in": n_in, "hidden": list(hidden), "n_out": n_out, "task": task}
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        out = self.net(x)
        return out.squeeze(-1) if self.config["task"] == "regression" else out

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into the folder ``path``."""
        import json

        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.config, indent=2))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / "model.safetensors"))
        return path


def load_mlp(path: str | Path) -> MLP:
    """An :class:`MLP` saved with :meth:`MLP.save` (config.json + model.safetensors)."""
    import json

    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: expected config.json and model.safetensors written by MLP.save")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("kind") != "mlp":
        raise ValueError(f"{cfg_path}: kind is {cfg.get('kind')!r}, expected 'mlp'")
    model = MLP(cfg["n_in"], cfg["hidden"], cfg["n_out"], cfg.get("task", "classifier"))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.eval()
