"""Load models by local path (never from a hub) and make them trackable by kronfluence.

Weights are read from safetensors only: a pickle checkpoint (``pytorch_model.bin``, ``*.pt``...)
can run arbitrary code when loaded, so a folder that has only pickles is refused with an error
that says how to convert it. Saves are atomic (see :func:`stores.atomic.atomic_folder`).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from stores.atomic import atomic_folder

from .tasks import linearize_conv1d

#: File endings of pickle-based checkpoints, which are never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class UnsafeCheckpointError(ValueError):
    """A model folder holds weights only as a pickle checkpoint, which is refused (unsafe to load)."""


class ModelLoadError(ValueError):
    """A local model or tokenizer folder exists but cannot be loaded; says which folder and why."""


def quiet_transformers() -> None:
    """Keep transformers' own progress bars (weight loading) out of our output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _pickle_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def require_safetensors(folder: str | Path, convert_hint: str) -> None:
    """Check that ``folder`` holds safetensors weights; raise a clear error if it has only pickles.

    Raises :class:`UnsafeCheckpointError` (naming the folder and the pickle file, with
    ``convert_hint`` saying how to convert it) when the weights are only in a pickle checkpoint,
    and :class:`FileNotFoundError` when there are no weights at all.
    """
    folder = Path(folder)
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        return
    pickles = _pickle_files(folder)
    if pickles:
        raise UnsafeCheckpointError(
            f"{folder / pickles[0]}: the weights in {folder} are a pickle checkpoint, which can run arbitrary "
            f"code when loaded, so they are not loaded (safetensors only). If you trust the file, convert it "
            f"once yourself in a trusted environment: {convert_hint}")
    raise FileNotFoundError(f"{folder}: no weights found (expected *.safetensors)")


def _hf_convert_hint(folder: Path, cls: str) -> str:
    return (f"`from transformers import {cls}; m = {cls}.from_pretrained({str(folder)!r}, use_safetensors=False); "
            f"m.save_pretrained({str(folder)!r}, safe_serialization=True)`, then delete the pickle file")


def load_causal_lm(path: str | Path, device: str = "cpu") -> nn.Module:
    """A ``transformers`` causal LM saved with ``save_pretrained`` (safetensors) at a local ``path``.

    GPT-2's Conv1D layers are converted to ``nn.Linear`` (same outputs) so influence can track
    them. Refuses anything that is not a local folder (models are never downloaded at run time),
    remote code, and pickle checkpoints (:class:`UnsafeCheckpointError`, with how to convert).
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a local folder written by save_pretrained (no hub downloads)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json; expected a folder written by save_pretrained")
    require_safetensors(path, _hf_convert_hint(path, "AutoModelForCausalLM"))
    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                                     trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: cannot load a causal LM from this folder ({first})") from exc
    return linearize_conv1d(model).to(device).eval()


def save_causal_lm(model: nn.Module, folder: str | Path, tokenizer=None) -> Path:
    """Save a causal LM loaded by :func:`load_causal_lm` (safetensors) as ``folder``, atomically.

    Undoes :func:`linearize_conv1d` on the way out: the architecture class is rebuilt from the
    model's config, and every layer that class holds as a transformers ``Conv1D`` (GPT-2) gets the
    transposed weight of our ``nn.Linear``, so the folder loads with ``from_pretrained`` as usual.
    """
    from transformers.pytorch_utils import Conv1D

    quiet_transformers()
    fresh = type(model)(model.config)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ours = dict(model.named_modules())
    for name, module in fresh.named_modules():  # square layers too: decide by type, never by shape
        if isinstance(module, Conv1D) and isinstance(ours.get(name), nn.Linear):
            state[f"{name}.weight"] = state[f"{name}.weight"].t().contiguous()
    fresh.load_state_dict(state, strict=True)
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        fresh.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    return folder


def load_tokenizer(path: str | Path):
    """A tokenizer saved with ``save_pretrained`` at a local ``path`` (no remote code)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a local tokenizer folder (no hub downloads)")
    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: no loadable tokenizer in this folder ({first}); pass --tokenizer with a "
                             "folder written by tokenizer.save_pretrained") from exc


#: The files :meth:`MLP.save` writes.
MLP_FILES = ("config.json", "model.safetensors")


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
        """Write ``config.json`` and ``model.safetensors`` as the folder ``path``, atomically.

        The folder appears only once both files are complete; an earlier save there is replaced.
        A folder that holds anything else is refused (it is not ours to replace).
        """
        import json

        from safetensors.torch import save_file

        path = Path(path)
        if path.is_dir():
            other = sorted(p.name for p in path.iterdir() if p.name not in MLP_FILES)
            if other:
                raise FileExistsError(f"{path}: holds files other than an MLP save ({', '.join(other[:5])}); "
                                      "refusing to replace it, save the MLP to its own folder")
        with atomic_folder(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                      str(tmp / "model.safetensors"))
            (tmp / "config.json").write_text(json.dumps(self.config, indent=2))
        return path


def load_mlp(path: str | Path) -> MLP:
    """An :class:`MLP` saved with :meth:`MLP.save` (config.json + model.safetensors)."""
    import json

    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / "config.json"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a folder with config.json and model.safetensors written by MLP.save")
    if not (path / "model.safetensors").is_file():
        require_safetensors(path, "build the MLP, `net.load_state_dict(torch.load(file, weights_only=True))`, "
                                  f"then `net.save({str(path)!r})`")
    if not cfg_path.is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: expected config.json and model.safetensors written by MLP.save")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("kind") != "mlp":
        raise ValueError(f"{cfg_path}: kind is {cfg.get('kind')!r}, expected 'mlp'")
    model = MLP(cfg["n_in"], cfg["hidden"], cfg["n_out"], cfg.get("task", "classifier"))
    model.load_state_dict(load_file(str(path / "model.safetensors"), device="cpu"))
    return model.eval()
