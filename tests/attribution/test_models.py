"""Model saving and loading: atomic saves (a folder exists only when complete) and safetensors only
(a pickle checkpoint is refused with an error saying how to convert it). Real tiny GPT-2s and MLPs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attribution.data import char_tokenizer
from attribution.models import MLP, UnsafeCheckpointError, load_causal_lm, load_mlp, load_tokenizer
from curation.steps.train import LMConfig, build_gpt2, save_lm

CFG = LMConfig(n_layer=1, n_embd=16, n_head=2, max_length=32)


def _tiny(seed: int = 0):
    tok = char_tokenizer("0123456789+= \n")
    return build_gpt2(tok, CFG, seed), tok


def _logits(model, tok, text: str = "12+3=15") -> torch.Tensor:
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_lm_round_trip(tmp_path: Path) -> None:
    model, tok = _tiny()
    folder = save_lm(model, tok, tmp_path / "models" / "m")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert not [p for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    loaded, tok2 = load_causal_lm(folder), load_tokenizer(folder)
    assert tok2("12+3", add_special_tokens=False)["input_ids"] == tok("12+3", add_special_tokens=False)["input_ids"]
    torch.testing.assert_close(_logits(loaded, tok2), _logits(model.eval(), tok))
    assert _entries(folder.parent) == ["m"]


def _failing_gpt2_class():
    from transformers import GPT2LMHeadModel

    class FailsAfterWriting(GPT2LMHeadModel):
        """A real GPT-2 whose save writes its files (config.json included), then fails."""

        def save_pretrained(self, save_directory, *args, **kwargs):
            super().save_pretrained(save_directory, *args, **kwargs)
            assert (Path(save_directory) / "config.json").is_file()
            raise OSError("disk full")

    return FailsAfterWriting


def test_failed_save_leaves_no_folder_and_no_litter(tmp_path: Path) -> None:
    model, tok = _tiny()
    failing = _failing_gpt2_class()(model.config)
    folder = tmp_path / "models" / "m"
    with pytest.raises(OSError, match="disk full"):
        save_lm(failing, tok, folder)
    assert not (folder / "config.json").is_file()  # what ensure_model checks before reusing a model
    assert not folder.exists()
    assert _entries(folder.parent) == []


def test_failed_tokenizer_save_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, tok = _tiny()
    real = type(tok).save_pretrained

    def save_then_fail(self, save_directory, *args, **kwargs):
        real(self, save_directory, *args, **kwargs)
        raise OSError("killed while saving the tokenizer")

    monkeypatch.setattr(type(tok), "save_pretrained", save_then_fail)  # a third-party method
    folder = tmp_path / "m"
    with pytest.raises(OSError, match="killed"):
        save_lm(model, tok, folder)
    assert _entries(tmp_path) == []


def test_save_lm_replaces_existing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    old, tok = _tiny(seed=0)
    save_lm(old, tok, folder)
    (folder / "outputs-test.json").write_text("[]")  # a cache of the old model's outputs
    new, _ = _tiny(seed=1)
    save_lm(new, tok, folder)
    assert not (folder / "outputs-test.json").exists()
    torch.testing.assert_close(_logits(load_causal_lm(folder), tok), _logits(new.eval(), tok))
    assert _entries(tmp_path) == ["m"]


def test_failed_replacement_keeps_the_old_model(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    old, tok = _tiny(seed=0)
    save_lm(old, tok, folder)
    failing = _failing_gpt2_class()(old.config)
    with pytest.raises(OSError, match="disk full"):
        save_lm(failing, tok, folder)
    torch.testing.assert_close(_logits(load_causal_lm(folder), tok), _logits(old.eval(), tok))
    assert _entries(tmp_path) == ["m"]


def test_pickle_checkpoint_is_refused_with_how_to_convert(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model, tok = _tiny()
    folder = tmp_path / "pickled"
    model.save_pretrained(folder, safe_serialization=False)  # transformers 4 writes pytorch_model.bin
    for f in folder.glob("*.safetensors"):  # transformers 5 only writes safetensors: make the pickle
        f.unlink()
    if not (folder / "pytorch_model.bin").is_file():
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tok.save_pretrained(folder)
    # it is a genuine checkpoint: transformers loads it when pickles are allowed
    unsafe = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, use_safetensors=False)
    torch.testing.assert_close(_logits(unsafe, tok), _logits(model.eval(), tok))

    with pytest.raises(UnsafeCheckpointError) as err:
        load_causal_lm(folder)
    msg = str(err.value)
    assert str(folder) in msg and "pytorch_model.bin" in msg
    assert "pickle" in msg and "save_pretrained" in msg and "safe_serialization=True" in msg

    # converting as the message says makes it loadable
    unsafe.save_pretrained(folder, safe_serialization=True)
    (folder / "pytorch_model.bin").unlink()
    torch.testing.assert_close(_logits(load_causal_lm(folder), tok), _logits(model.eval(), tok))


def test_folder_without_weights_or_config(tmp_path: Path) -> None:
    model, tok = _tiny()
    with pytest.raises(FileNotFoundError, match="no hub downloads"):
        load_causal_lm(tmp_path / "missing")
    folder = tmp_path / "config-only"
    model.config.save_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_causal_lm(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_causal_lm(tmp_path / "empty")


@pytest.mark.parametrize("task", ["classifier", "regression"])
def test_mlp_round_trip(tmp_path: Path, task: str) -> None:
    torch.manual_seed(0)
    net = MLP(5, [7, 3], 1 if task == "regression" else 4, task).eval()
    folder = net.save(tmp_path / "mlp")
    assert _entries(folder) == ["config.json", "model.safetensors"]
    loaded = load_mlp(folder)
    assert loaded.config == net.config
    x = torch.randn(6, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    assert _entries(tmp_path) == ["mlp"]


def test_mlp_save_replaces_and_refuses_foreign_folders(tmp_path: Path) -> None:
    torch.manual_seed(0)
    folder = MLP(3, [4], 2).save(tmp_path / "mlp")
    net = MLP(3, [5, 5], 2)
    net.save(folder)  # replaces the earlier save
    assert load_mlp(folder).config["hidden"] == [5, 5]
    assert _entries(tmp_path) == ["mlp"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        net.save(folder)
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match=r"other than an MLP save \(mlp\)"):
        net.save(tmp_path)  # never replaces a folder holding other things


def test_mlp_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    real = safetensors.torch.save_file

    def write_then_fail(tensors, filename, *args, **kwargs):
        real(tensors, filename, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", write_then_fail)  # third-party function
    with pytest.raises(OSError, match="disk full"):
        MLP(3, [4], 2).save(tmp_path / "mlp")
    assert _entries(tmp_path) == []


def test_mlp_pickle_checkpoint_is_refused(tmp_path: Path) -> None:
    net = MLP(3, [4], 2)
    folder = net.save(tmp_path / "mlp")
    (folder / "model.safetensors").unlink()
    torch.save(net.state_dict(), folder / "model.pt")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_mlp(folder)
    assert str(folder) in str(err.value) and "model.pt" in str(err.value) and "weights_only=True" in str(err.value)
