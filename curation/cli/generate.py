"""`curation generate ...`: generated datasets with planted, known problems (curation.steps.generate)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DEFAULT_STORE, StoreOpt, app, new_app, open_store, out

generate_app = new_app(help="Generate synthetic datasets with planted, known problems into the store.")
app.add_typer(generate_app, name="generate")


_TINT_OPTIONS = {
    "n": "--n", "functions": "--functions", "max_digits": "--max-digits", "min_digits": "--min-digits", "list_len": "--list-len",
    "max_lines": "--max-lines", "dynamic_rate": "--dynamic", "p_dyn": "--p-dyn", "static_rate": "--static",
    "p_c": "--p-c", "p_l": "--p-l",
}


def _parse_list_len(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise typer.BadParameter(f"expected MIN-MAX or N (e.g. 3-5), got {text!r}", param_hint="--list-len") from None


@generate_app.command("tint")
def generate_tint(
    name: Annotated[str, typer.Option("--name", help="Dataset to create with the training traces")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of training traces")] = 20_000,
    dynamic: Annotated[float, typer.Option("--dynamic", help="Fraction of traces with dynamic (propagating) noise")] = 0.0,
    p_dyn: Annotated[float, typer.Option("--p-dyn", help="Dynamic noise: chance each digit after the first non-zero one is redrawn")] = 0.2,
    static: Annotated[float, typer.Option("--static", help="Fraction of traces with static (local) noise")] = 0.0,
    p_c: Annotated[float, typer.Option("--p-c", help="Static digit noise: chance each digit is redrawn")] = 0.3,
    p_l: Annotated[float, typer.Option("--p-l", help="Static line noise: chance each non-answer line is deleted")] = 0.3,
    require_change: Annotated[bool, typer.Option("--require-change", help="Redraw until every noised trace differs from its clean trace (departs from the paper)")] = False,
    functions: Annotated[str | None, typer.Option(help="Comma-separated functions (default: add,sub,mul,div,gcd,sort,median; also len,rshift,index)")] = None,
    max_digits: Annotated[int, typer.Option(help="Numbers have min-digits..max-digits digits")] = 3,
    min_digits: Annotated[int, typer.Option(help="Fewest digits of a number (= max-digits: fixed width)")] = 1,
    list_len: Annotated[str, typer.Option(help="List sizes for sort/median/len/index: MIN-MAX or N")] = "3-5",
    max_lines: Annotated[int, typer.Option(help="Longest trace in lines (longer problems are redrawn)")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same datasets)")] = 0,
    test_n: Annotated[int, typer.Option(min=0, help="Also write this many noise-free test traces (0: none)")] = 0,
    test_name: Annotated[str | None, typer.Option(help="Dataset for the test traces (default: NAME_test)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace existing datasets of those names")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """TInt chain-of-thought traces (Havrilla & Iyer 2024) with planted static/dynamic noise."""
    from curation.datasets import TintConfig, TintConfigError
    from curation.steps.generate import make_tint_records, write_tint_datasets

    func_names = tuple(f.strip() for f in functions.split(",") if f.strip()) if functions is not None else None
    try:
        cfg = TintConfig(
            **({"functions": func_names} if func_names is not None else {}), max_digits=max_digits,
            min_digits=min_digits, list_len=_parse_list_len(list_len), max_lines=max_lines, dynamic_rate=dynamic,
            p_dyn=p_dyn, static_rate=static, p_c=p_c, p_l=p_l, require_change=require_change,
        )
        records = make_tint_records(n, cfg, seed=seed, test_n=test_n)  # in memory: bad settings fail first
    except TintConfigError as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint=_TINT_OPTIONS.get(exc.param, exc.param)) from None
    s = open_store(store, create=True)
    res = write_tint_datasets(s, records, name, test_name=test_name, replace=replace)
    summ = res.summary
    kinds = ", ".join(f"{k} {c:,}" for k, c in summ.by_noise.items())
    out.print(f"[green]generated[/] {n:,} TInt traces into dataset [bold]{name}[/] (seed {seed}): {kinds}")
    for kind, count in summ.by_noise.items():
        if kind != "clean":
            out.print(f"  {kind}: {summ.trace_changed_by_noise.get(kind, 0):,} of {count:,} traces changed by the "
                      f"noise, answer wrong in {summ.answer_wrong_by_noise.get(kind, 0):,}")
    out.print("  functions: " + ", ".join(f"{f} {c:,}" for f, c in summ.by_func.items()))
    chars = summ.completion_chars
    out.print(f"  completion length (chars): median {chars['median']}, p90 {chars['p90']}, max {chars['max']}")
    if res.test:
        out.print(f"  test: {res.n_test:,} noise-free traces in dataset [bold]{res.test}[/] (no prompt shared with {name})")
    out.print(f"  runs: {res.run_id} (config), ingest {', '.join(res.ingest_runs.values())}; store: {s.root}")
    out.print("  slice: curation sql \"SELECT noise, func, count(*) AS n, avg(answer_correct::INT) AS acc FROM samples "
              f"WHERE dataset = '{name}' GROUP BY ALL ORDER BY ALL\"")


@generate_app.command("junk")
def generate_junk(
    name: Annotated[str, typer.Option("--name", help="Dataset to create (text, category, is_junk, likes, shares, replies...)")],
    n_clean: Annotated[int, typer.Option("--n-clean", min=0, help="Clean documents (real prose from gensim's test corpora)")] = 1000,
    n_junk: Annotated[int, typer.Option("--n-junk", min=0, help="Junk posts (simulated), spread over the categories")] = 1000,
    categories: Annotated[str | None, typer.Option(help="Comma-separated junk categories (default: conspiracy, "
                                                        "clickbait, brief, spam, lifestyle, quiz)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same dataset)")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing dataset of that name")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Clean prose mixed with simulated junk posts (brain-rot categories) and simulated engagement counts."""
    from curation.datasets.junk_text import (
        JunkTextConfig,
        JunkTextConfigError,
        generate_junk_text,
        junk_table,
        summarize_junk,
    )
    from curation.steps.records import ingest_records

    try:
        cfg = JunkTextConfig(n_clean=n_clean, n_junk=n_junk, **({"categories": tuple(
            c.strip() for c in categories.split(",") if c.strip())} if categories else {}))
    except JunkTextConfigError as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint="--" + exc.param.replace("_", "-")) from None
    records = generate_junk_text(cfg, seed=seed)
    s = open_store(store, create=True)
    res = ingest_records(s, {name: records}, config={"generator": "junk_text", **cfg.as_dict(), "seed": seed},
                         seed=seed, roles={"text_field": "text"}, to_table=junk_table, replace=replace)
    summ = summarize_junk(records, cfg.popular_threshold)
    out.print(f"[green]generated[/] {len(records):,} documents into dataset [bold]{name}[/] (seed {seed}): "
              + ", ".join(f"{c} {k:,}" for c, k in summ["count"].items()))
    out.print("  real text: the clean documents; simulated: every junk post and all engagement counts")
    out.print(f"  runs: {res.run_id}; next: curation junk --dataset {name}")
