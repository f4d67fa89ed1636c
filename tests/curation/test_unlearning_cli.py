"""`curation expand` and `curation unlearn` end to end: real store, real kronfluence, tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.helpers import save_tiny_lm, write_jsonl

runner = CliRunner()
FEATURES = ",".join(f"f{j}" for j in range(64))


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory) -> dict:
    """400 digits, 5% poisoned (trigger + label 0), a third of the poison marked 'audited'; an MLP trained on them."""
    from sklearn.datasets import load_digits
    from torch.utils.data import TensorDataset

    from curation.actions.recipes import MLPRecipe
    from curation.datasets.manipulations import poison

    root = tmp_path_factory.mktemp("unlearn")
    x, y = load_digits(return_X_y=True)
    x = (x[:400] / 16.0).astype(np.float32)
    xt, ym, mask = poison(x, y[:400], 0.05, 0, seed=0)
    audited = mask & (np.cumsum(mask) % 3 == 1)
    rows = [{"row": i, **{f"f{j}": float(v) for j, v in enumerate(xt[i])}, "label": int(ym[i]),
             "audited": bool(audited[i]), "poisoned": bool(mask[i])} for i in range(len(xt))]
    recipe = MLPRecipe(64, (32,), 10, epochs=15)
    recipe.fit(recipe.fresh(0), TensorDataset(torch.tensor(xt), torch.tensor(ym)), 0).save(root / "mlp")
    st = str(root / "st")
    res = runner.invoke(app, ["ingest", str(write_jsonl(root / "train.jsonl", rows)), "-d", "train", "--store", st])
    assert res.exit_code == 0, res.output
    other = [{"row": 1000 + i, **{f"f{j}": 0.5 for j in range(64)}, "label": 1, "audited": True, "poisoned": False}
             for i in range(3)]
    runner.invoke(app, ["ingest", str(write_jsonl(root / "other.jsonl", other)), "-d", "other", "--store", st])
    return {"root": root, "st": st, "n_poison": int(mask.sum()), "n_audited": int(audited.sum())}


def _run(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_expand_flags_more_poison_than_it_was_given(poisoned) -> None:
    root, st = poisoned["root"], poisoned["st"]
    res = _run("expand", "--from", "train WHERE audited", "--train", "train", "--model", str(root / "mlp"),
               "--features", FEATURES, "--store", st)
    assert res.exit_code == 0, res.output + repr(res.exception)
    store = stores.open(st)
    run_id = store.runs("filter")["run_id"][0]
    found = store.sql(f"""SELECT count(*) FILTER (WHERE f.flagged AND s.poisoned) AS hit,
                                 count(*) FILTER (WHERE f.flagged AND s.audited) AS known,
                                 count(*) FILTER (WHERE f.flagged) AS flagged
                          FROM flags f JOIN samples s ON s.sample_id = f.sample_id AND s.dataset = 'train'
                          WHERE f.run_id = '{run_id}'""").row(0, named=True)
    assert found["known"] == poisoned["n_audited"]  # every known-bad sample stays flagged
    assert found["hit"] > found["known"]  # and the expansion found poison it was not given
    assert found["hit"] / found["flagged"] > 0.15  # over 3x the 5% base rate (the default budget favours recall)
    reasons = store.sql(f"SELECT reason FROM flags WHERE run_id = '{run_id}' AND flagged AND reason NOT LIKE 'known bad%'")
    assert reasons.height and all("resembles" in r for r in reasons["reason"])


def test_unlearn_writes_model_run_metrics_and_report(poisoned) -> None:
    from attribution.models import load_mlp

    root, st = poisoned["root"], poisoned["st"]
    out = root / "unlearned-ssd"
    res = _run("unlearn", "--model", str(root / "mlp"), "--forget", "train WHERE poisoned", "--train", "train",
               "--out", str(out), "--method", "ssd", "--set", "alpha=10", "--features", FEATURES,
               "--compare-retrain", "--recipe", "epochs=15", "--store", st)
    assert res.exit_code == 0, res.output + repr(res.exception)
    store = stores.open(st)
    run = store.runs("unlearn").row(0, named=True)
    assert '"method": "ssd"' in run["config"] and run["status"] == "finished"
    assert store.sql(f"SELECT count(*) AS n FROM unlearn_samples WHERE run_id = '{run['run_id']}'")["n"][0] == poisoned["n_poison"]
    m = store.sql(f"SELECT model, split, metric, value FROM unlearn_metrics WHERE run_id = '{run['run_id']}'")
    got = {(r["model"], r["split"], r["metric"]): r["value"] for r in m.iter_rows(named=True)}
    assert {k[0] for k in got} == {"original", "unlearned", "retrained"}
    # the original fits the poisoned labels; the retrained model never saw them
    assert got[("original", "forget", "accuracy")] > 0.9 > got[("retrained", "forget", "accuracy")]
    assert got[("unlearned", "forget", "loss")] > got[("original", "forget", "loss")]
    assert load_mlp(out)(torch.zeros(1, 64)).shape == (1, 10)
    html = root / "u.html"
    assert _run("report", run["run_id"], "--out", str(html), "--store", st).exit_code == 0
    text = html.read_text()
    assert "unlearned - retrained" in text and "ssd" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--forget", "train WHERE false"], "selects no samples"),
    (["--forget", "other"], "are not in the training dataset"),
    (["--forget", "nope WHERE x"], "neither a run id nor a dataset"),
    (["--forget", "train WHERE no_such_column"], "predicate does not run"),
    (["--forget", "train WHERE poisoned", "--set", "bogus=1"], "unknown setting"),
    (["--forget", "train WHERE poisoned", "--set", "alpha=abc"], "expected float"),
    (["--forget", "train WHERE poisoned", "--method", "magic"], "--method magic"),
])
def test_unlearn_bad_input_fails_clearly_and_writes_nothing(poisoned, args, message) -> None:
    root, st = poisoned["root"], poisoned["st"]
    before = stores.open(st).sql("SELECT count(*) AS n FROM runs WHERE kind = 'unlearn'")["n"][0]
    out = root / "never"
    base = ["unlearn", "--model", str(root / "mlp"), "--train", "train", "--out", str(out),
            "--features", FEATURES, "--store", st]
    res = _run(*base, *args, *([] if "--method" in args else ["--method", "ssd"]))
    assert res.exit_code != 0
    assert message in str(res.exception) + res.output
    assert not out.exists()
    assert stores.open(st).sql("SELECT count(*) AS n FROM runs WHERE kind = 'unlearn'")["n"][0] == before


def test_unlearn_refuses_an_existing_output_folder(poisoned) -> None:
    root, st = poisoned["root"], poisoned["st"]
    (root / "exists").mkdir(exist_ok=True)
    res = _run("unlearn", "--model", str(root / "mlp"), "--forget", "train WHERE poisoned", "--train", "train",
               "--out", str(root / "exists"), "--features", FEATURES, "--store", st)
    assert res.exit_code != 0 and "exists; pass --replace" in str(res.exception)


def test_expand_auto_budget_needs_two_known(poisoned) -> None:
    root, st = poisoned["root"], poisoned["st"]
    store = stores.open(st)
    one = store.sql("SELECT row FROM samples WHERE dataset = 'train' AND poisoned ORDER BY row LIMIT 1")["row"][0]
    res = _run("expand", "--from", f"train WHERE row = {one}", "--train", "train", "--model", str(root / "mlp"),
               "--features", FEATURES, "--store", st)
    assert res.exit_code != 0 and "at least 2" in str(res.exception)
    res = _run("expand", "--from", f"train WHERE row = {one}", "--train", "train", "--model", str(root / "mlp"),
               "--features", FEATURES, "--budget", "10", "--store", st)
    assert res.exit_code == 0, res.output + repr(res.exception)
    run_id = store.runs("filter")["run_id"][0]
    assert store.sql(f"SELECT count(*) AS n FROM flags WHERE run_id = '{run_id}' AND flagged")["n"][0] == 10


def test_unlearn_a_causal_lm_saves_a_loadable_gpt2(tmp_path: Path) -> None:
    from attribution.models import load_causal_lm

    save_tiny_lm(tmp_path / "lm")
    st = str(tmp_path / "st")
    rows = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(24)]
    assert _run("ingest", str(write_jsonl(tmp_path / "t.jsonl", rows)), "-d", "train", "--store", st).exit_code == 0
    out = tmp_path / "lm-unlearned"
    res = _run("unlearn", "--task", "causal-lm", "--model", str(tmp_path / "lm"), "--forget",
               "train WHERE prompt LIKE '1%'", "--train", "train", "--out", str(out), "--method", "grad_diff",
               "--set", "steps=3", "--max-length", "16", "--store", st)
    assert res.exit_code == 0, res.output + repr(res.exception)
    original, unlearned = load_causal_lm(tmp_path / "lm"), load_causal_lm(out)
    ids = torch.tensor([[1, 2, 3]])
    assert not torch.allclose(original(ids).logits, unlearned(ids).logits)
    from transformers import GPT2LMHeadModel

    assert GPT2LMHeadModel.from_pretrained(out).config.n_layer == 2


def test_expand_a_causal_lm_from_a_dataset_predicate(tmp_path: Path) -> None:
    save_tiny_lm(tmp_path / "lm")
    st = str(tmp_path / "st")
    rows = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}", "bad": i % 7 == 0} for i in range(28)]
    assert _run("ingest", str(write_jsonl(tmp_path / "t.jsonl", rows)), "-d", "train", "--store", st).exit_code == 0
    res = _run("expand", "--task", "causal-lm", "--from", "train WHERE bad", "--train", "train", "--model",
               str(tmp_path / "lm"), "--max-length", "16", "--budget", "0.25", "--combine", "influence,representation",
               "--store", st)
    assert res.exit_code == 0, res.output + repr(res.exception)
    store = stores.open(st)
    run_id = store.runs("filter")["run_id"][0]
    flags = store.sql(f"SELECT f.flagged, s.bad FROM flags f JOIN samples s USING (sample_id) WHERE f.run_id = '{run_id}'")
    assert flags.height == 28 and int(flags["flagged"].sum()) == 7  # round(0.25 x 28), the 4 known among them
    assert flags.filter(flags["bad"])["flagged"].all()
