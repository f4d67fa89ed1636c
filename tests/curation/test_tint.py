"""TInt traces: digit-wise arithmetic, traces, noise models, the verifier and `curation generate tint`."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from curation.cli import app
from curation.datasets import (
    CHARSET,
    FUNCTIONS,
    TintConfigError,
    generate_tint,
    generate_tint_test,
    parse_prompt,
    run_trace,
    verify_trace,
    write_jsonl,
)
from curation.datasets import tint_ops as ops
from curation.datasets.tint_traces import Problem, format_line
from stores.errors import DatasetExistsError

ALL = tuple(FUNCTIONS)
LINE = re.compile(r"^[a-z]+ = \d( \d)*( , \d( \d)*)*$")


def _reference(problem: Problem):
    """The answer by Python integer arithmetic, as a value (digit string or tuple)."""
    f, args = problem.func, problem.args
    if f in ("add", "sub", "mul", "div", "gcd", "rshift"):
        a, b = int(args[0]), int(args[1])
        return {
            "add": lambda: str(a + b), "sub": lambda: str(a - b), "mul": lambda: str(a * b),
            "div": lambda: (str(a // b), str(a % b)), "gcd": lambda: str(math.gcd(a, b)),
            "rshift": lambda: str(a // 10**b),
        }[f]()
    xs = [int(x) for x in args[0]]
    if f == "sort":
        return tuple(str(x) for x in sorted(xs))
    if f == "median":
        return str(sorted(xs)[(len(xs) - 1) // 2])
    if f == "len":
        return str(len(xs))
    return str(xs[int(args[1])])  # index


def _clean_lines(prompt: str) -> list[str]:
    return [format_line(v, x) for v, x in run_trace(parse_prompt(prompt))]


# ---------------------------------------------------------------------- digit-wise ops
EDGE = [
    ("0", "0"), ("999", "1"), ("1", "999"), ("1000", "1"), ("100", "99"), ("500", "500"),
    ("909", "91"), ("10", "10"), ("7", "0"), ("0", "7"), ("999", "999"), ("1001", "999"), ("0099", "7"),
]


def test_digit_ops_equal_python_integers() -> None:
    rnd = random.Random(0)
    cases = list(EDGE)
    for _ in range(3000):
        cases.append((str(rnd.randrange(10 ** rnd.randint(1, 7))), str(rnd.randrange(10 ** rnd.randint(1, 5)))))
    for a, b in cases:
        x, y = int(a), int(b)
        assert ops.add(a, b) == str(x + y), (a, b)
        assert ops.mul(a, b) == str(x * y), (a, b)
        assert ops.compare(a, b) == (x > y) - (x < y), (a, b)
        if x >= y:
            assert ops.sub(a, b) == str(x - y), (a, b)
        else:
            with pytest.raises(ValueError):
                ops.sub(a, b)
        if y:
            assert ops.divmod_digits(a, b) == (str(x // y), str(x % y)), (a, b)
        else:
            with pytest.raises(ZeroDivisionError):
                ops.divmod_digits(a, b)
        for d in "0159":
            assert ops.mul_digit(a, d) == str(x * int(d))


def test_every_function_answers_like_python() -> None:
    rng = np.random.default_rng(1)
    from curation.datasets.tint_traces import draw_problem

    for func in ALL:
        for _ in range(300):
            problem = draw_problem(func, rng, 4, (1, 6))
            assert run_trace(problem)[-1] == ("ans", _reference(problem)), problem
    # hand-checked traces: carry, borrow, long division with a remainder
    assert "\n".join(_clean_lines("add 4 5 7 , 1 8\n")) == "s = 5\nc = 1\ns = 7 5\nc = 0\ns = 4 7 5\nans = 4 7 5"
    assert "\n".join(_clean_lines("sub 1 0 0 , 1\n")) == "r = 9\nc = 1\nr = 9 9\nr = 0 9 9\nc = 0\nans = 9 9"
    assert _clean_lines("div 9 7 , 4\n")[-1] == "ans = 2 4 , 1"
    assert _clean_lines("gcd 4 8 , 1 8\n") == ["a = 1 2", "b = 6", "a = 0", "ans = 6"]


# ---------------------------------------------------------------------- clean traces
def test_clean_traces_verify_and_use_the_charset() -> None:
    recs = generate_tint(1500, seed=3, functions=ALL)
    assert {r["func"] for r in recs} == set(ALL) and {r["noise"] for r in recs} == {"clean"}
    for r in recs:
        assert set(r["prompt"] + r["completion"]) <= set(CHARSET)
        lines = r["completion"].split("\n")
        assert all(LINE.match(line) for line in lines), r["completion"]
        assert lines[-1] == f"ans = {r['true_answer']}" and r["n_lines"] == len(lines) <= 300
        assert r["answer_correct"] and r["first_wrong_line"] == -1 and not r["trace_changed"]
        assert r["p_c"] == r["p_l"] == r["p_dyn"] == 0.0
        res = verify_trace(r["prompt"], r["completion"])
        assert res.ok and all(res.line_ok) and res.n_missing == 0
    assert [r["index"] for r in recs] == list(range(1500))
    assert len({r["prompt"] for r in recs}) == 1500  # unique problems: unique sample ids


def test_default_sizes_are_small() -> None:
    lengths = sorted(len(r["completion"]) for r in generate_tint(1000, seed=0))
    assert lengths[len(lengths) // 2] < 80 and lengths[int(0.99 * len(lengths))] < 200


def test_same_seed_same_records_other_seed_other_records() -> None:
    kw = dict(dynamic_rate=0.3, static_rate=0.3)
    a = generate_tint(300, seed=7, **kw)
    assert a == generate_tint(300, seed=7, **kw)
    assert a != generate_tint(300, seed=8, **kw)


def test_contamination_rates_are_as_requested() -> None:
    recs = generate_tint(1000, seed=0, dynamic_rate=0.2, static_rate=0.35)
    kinds = [r["noise"] for r in recs]
    assert (kinds.count("dynamic"), kinds.count("static"), kinds.count("clean")) == (200, 350, 450)
    assert 60 < kinds[:500].count("dynamic") < 140  # spread at random, not in a block
    for r in recs:
        assert (r["p_dyn"] > 0) == (r["noise"] == "dynamic")
        assert (r["p_c"] > 0) == (r["noise"] == "static")


# ---------------------------------------------------------------------- dynamic noise
def test_dynamic_noise_propagates_to_later_lines_and_the_answer() -> None:
    # corrupt one value by hand: the next lines build on it and the answer carries it
    problem = parse_prompt("add 4 5 7 , 1 8\n")
    noise = lambda v: "79" if v == "75" else v  # noqa: E731
    lines = [format_line(v, x) for v, x in run_trace(problem, noise)]
    assert lines == ["s = 5", "c = 1", "s = 7 9", "c = 0", "s = 4 7 9", "ans = 4 7 9"]
    res = verify_trace(problem.prompt, "\n".join(lines))
    assert res.line_ok == [True, True, False, True, True, True]  # only the noised line is wrong
    assert res.first_wrong_line == 2 and not res.answer_correct

    recs = generate_tint(1500, seed=0, dynamic_rate=1.0, p_dyn=0.2)
    changed = [r for r in recs if r["trace_changed"]]
    assert len(changed) > 0.35 * len(recs)  # short default traces leave some unchanged
    assert all(r["first_wrong_line"] >= 0 for r in changed)
    assert not any(r["first_wrong_line"] >= 0 or not r["answer_correct"] for r in recs if not r["trace_changed"])
    wrong = [r for r in changed if not r["answer_correct"]]
    assert len(wrong) > 0.75 * len(changed)
    # the answer line itself is never noised: it follows from the (wrong) lines before it
    assert all(verify_trace(r["prompt"], r["completion"]).line_ok[-1] for r in wrong)
    # the first noised value keeps its variable, length and leading digit; it is the first wrong line
    for r in changed:
        got, clean = r["completion"].split("\n"), _clean_lines(r["prompt"])
        k = next(i for i, (g, c) in enumerate(zip(got, clean, strict=False)) if g != c)
        (gv, g), (cv, c) = got[k].split(" = "), clean[k].split(" = ")
        assert gv == cv and len(g) == len(c) and g.lstrip("0 ,")[:1] == c.lstrip("0 ,")[:1]
        assert r["first_wrong_line"] == k


def test_require_change_noises_every_noised_trace() -> None:
    recs = generate_tint(400, seed=0, dynamic_rate=0.5, static_rate=0.5, require_change=True)
    assert all(r["trace_changed"] for r in recs)
    dyn = [r for r in recs if r["noise"] == "dynamic"]
    assert sum(not r["answer_correct"] for r in dyn) > 0.75 * len(dyn)


# ---------------------------------------------------------------------- static noise
def test_static_digit_noise_is_local_and_hits_digits_at_rate_p_c() -> None:
    recs = generate_tint(800, seed=0, static_rate=1.0, p_c=0.3, p_l=0.0)
    n_digits = n_changed = answers_hit = 0
    for r in recs:
        clean = "\n".join(_clean_lines(r["prompt"]))
        got = r["completion"]
        assert len(got) == len(clean) and r["n_lines"] == clean.count("\n") + 1
        for g, c in zip(got, clean, strict=True):
            if c.isdigit():
                n_digits += 1
                n_changed += g != c
            else:
                assert g == c  # names, spaces, '=' and ',' untouched
        answers_hit += got.split("\n")[-1] != clean.split("\n")[-1]
    assert abs(n_changed / n_digits - 0.3 * 0.9) < 0.02  # a uniform redraw keeps the digit 1 time in 10
    assert answers_hit > 0.2 * len(recs)  # the answer is noised too
    assert all(r["first_wrong_line"] >= 0 for r in recs if r["trace_changed"])


def test_static_line_noise_deletes_non_answer_lines_and_the_rest_verifies() -> None:
    recs = generate_tint(800, seed=0, static_rate=1.0, p_c=0.0, p_l=0.5)
    n_lines = n_deleted = 0
    for r in recs:
        clean = _clean_lines(r["prompt"])
        got = r["completion"].split("\n")
        assert got[-1] == clean[-1] and r["answer_correct"]
        it = iter(clean)
        assert all(line in it for line in got)  # what is left is the clean trace, in order
        n_lines += len(clean) - 1
        n_deleted += len(clean) - len(got)
        res = verify_trace(r["prompt"], r["completion"])
        assert all(res.line_ok) and r["first_wrong_line"] == -1  # missing lines are not wrong
        assert res.n_missing == len(clean) - len(got)
    assert abs(n_deleted / n_lines - 0.5) < 0.03


# ---------------------------------------------------------------------- test sets, verifier, config
def test_test_sets_are_clean_and_disjoint_from_training() -> None:
    train = generate_tint(500, seed=0, dynamic_rate=0.5, static_rate=0.5)
    test = generate_tint_test(300, seed=0, exclude_prompts={r["prompt"] for r in train})
    assert {r["noise"] for r in test} == {"clean"}
    assert all(r["answer_correct"] and r["first_wrong_line"] == -1 for r in test)
    assert not {r["prompt"] for r in test} & {r["prompt"] for r in train}


def test_verifier_points_at_the_first_wrong_line() -> None:
    prompt = "mul 4 6 5 , 2 1 2\n"
    clean = _clean_lines(prompt)
    assert verify_trace(prompt, "\n".join(clean)).ok
    bad = list(clean)
    bad[1] = bad[1][:-1] + ("1" if bad[1][-1] != "1" else "2")
    res = verify_trace(prompt, "\n".join(bad))
    assert res.first_wrong_line == 1 and res.answer_correct
    res = verify_trace(prompt, "\n".join(clean[:-1] + ["what is this", clean[-1]]))
    assert res.first_wrong_line == len(clean) - 1 and res.answer_correct
    res = verify_trace(prompt, "\n".join(clean[:-1]))  # no answer line
    assert res.answer is None and not res.answer_correct
    assert not verify_trace(prompt, "").answer_correct
    for bad_prompt in ("pow 2 , 3\n", "add 12 , 3\n", "div 5 , 0\n", "sub 1 , 9\n"):
        with pytest.raises(ValueError, match="prompt"):
            verify_trace(bad_prompt, "ans = 1")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"dynamic_rate": 1.5}, "dynamic_rate"), ({"p_c": -0.1}, "p_c"), ({"functions": ["add", "pow"]}, "functions"),
        ({"dynamic_rate": 0.6, "static_rate": 0.6}, "static_rate"), ({"max_digits": 0}, "max_digits"),
        ({"list_len": (4, 2)}, "list_len"), ({"n": 0}, "n"), ({"n": 500, "functions": ["add"], "max_digits": 1}, "n"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict, param: str) -> None:
    kwargs = {"n": 10, **kwargs}
    with pytest.raises(TintConfigError) as info:
        generate_tint(kwargs.pop("n"), **kwargs)
    assert info.value.param == param


def test_write_jsonl_round_trips(tmp_path) -> None:
    recs = generate_tint(5, seed=0)
    path = write_jsonl(recs, tmp_path / "t.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == recs


# ---------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_generates_queryable_datasets(tmp_path) -> None:
    st = str(tmp_path / "st")
    args = ["generate", "tint", "--n", "400", "--dynamic", "0.25", "--static", "0.1", "--seed", "0",
            "--name", "tint_train", "--test-n", "50", "--test-name", "tint_test", "--store", st]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "clean 260, static 40, dynamic 100" in res.output and "tint_test" in res.output
    q = ("SELECT noise, count(*) AS n, count_if(answer_correct)::BIGINT AS right, min(first_wrong_line) AS fwl, "
         "max(p_dyn) AS p_dyn FROM samples WHERE dataset = 'tint_train' GROUP BY noise ORDER BY noise")
    res = runner.invoke(app, ["sql", q, "--format", "json", "--store", st])
    assert res.exit_code == 0, res.output
    rows = {r["noise"]: r for r in map(json.loads, res.output.splitlines())}
    assert rows["clean"]["n"] == rows["clean"]["right"] == 260 and rows["clean"]["fwl"] == -1
    assert rows["dynamic"]["n"] == 100 and rows["dynamic"]["p_dyn"] == 0.2 and rows["dynamic"]["right"] < 100
    res = runner.invoke(app, ["sql", "SELECT count(*) AS n, bool_and(noise = 'clean') AS clean, "
                              "count(DISTINCT sample_id) AS ids FROM samples WHERE dataset = 'tint_test'",
                              "--format", "json", "--store", st])
    assert json.loads(res.output) == {"n": 50, "clean": True, "ids": 50}
    # same seed, same data; an existing name needs --replace
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and isinstance(res.exception, DatasetExistsError)
    assert runner.invoke(app, [*args, "--replace"]).exit_code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dynamic", "1.5"], "--dynamic"), (["--p-l", "2"], "--p-l"), (["--functions", "add,pow"], "'pow'"),
        (["--n", "0"], "--n"), (["--list-len", "5-3"], "--list-len"),
    ],
)
def test_cli_rejects_bad_values_clearly(tmp_path, extra: list[str], message: str) -> None:
    res = runner.invoke(app, ["generate", "tint", "--name", "t", "--store", str(tmp_path / "st"), *extra])
    assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "st").exists()  # nothing written


def test_verifier_survives_arbitrary_edits() -> None:
    rnd = random.Random(0)
    recs = generate_tint(300, seed=5, functions=ALL, dynamic_rate=0.3, static_rate=0.3)
    junk = ["ans = 9 9 9 9 9 9 9 9 9 9 9 9", "l = 5", "s = 1 , 2", "c = 9 9", "zz = 1", "=", "a = ", "r = 0 0 0"]
    for r in recs:
        lines = r["completion"].split("\n")
        for _ in range(rnd.randint(1, 4)):
            op = rnd.randrange(3)
            k = rnd.randrange(len(lines))
            if op == 0:
                lines.insert(k, rnd.choice(junk))
            elif op == 1 and len(lines) > 1:
                lines.pop(k)
            else:
                lines[k], lines[-1] = lines[-1], lines[k]
        res = verify_trace(r["prompt"], "\n".join(lines))
        assert len(res.line_ok) == len(lines) and -1 <= res.first_wrong_line < len(lines)


def test_fixed_width_numbers() -> None:
    recs = generate_tint(300, seed=3, functions=("add", "sub"), max_digits=2, min_digits=2)
    for r in recs:
        args = parse_prompt(r["prompt"]).args
        assert all(len(a) == 2 and a[0] != "0" for a in args), r["prompt"]
        assert verify_trace(r["prompt"], r["completion"]).ok
    with pytest.raises(TintConfigError, match="min_digits"):
        generate_tint(5, max_digits=2, min_digits=3)
