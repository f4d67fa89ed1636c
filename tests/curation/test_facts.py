"""The fictitious-people fact corpus: deterministic, unique names, clean splits, faithful records."""

from __future__ import annotations

import re

import pytest

import stores
from curation.actions.unlearning.memorisation import normalise_answer
from curation.datasets.facts import (
    ATTRIBUTES,
    BIO_TEMPLATES,
    CITIES,
    EMPLOYERS,
    INSTRUMENTS,
    OCCUPATIONS,
    FactRecord,
    fact_records,
    facts_table,
    ingest_facts,
    make_people,
    split_of,
    split_people,
    train_facts_tokenizer,
)


def test_people_are_deterministic_by_seed_and_prefix_stable():
    assert make_people(60, seed=3) == make_people(60, seed=3)
    assert make_people(60, seed=3) != make_people(60, seed=4)
    assert make_people(60, seed=3)[:25] == make_people(25, seed=3)


def test_names_are_unique_invented_and_disjoint_from_the_values():
    people = make_people(2000, seed=0)
    names = [p.name for p in people]
    assert len(set(names)) == len(names)
    value_words = {w.lower() for v in (*CITIES, *EMPLOYERS, *OCCUPATIONS, *INSTRUMENTS) for w in v.split()}
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", name), name
        assert not {w.lower() for w in name.split()} & value_words
    assert [p.person_id for p in people[:3]] == ["p0000", "p0001", "p0002"]


def test_attributes_come_from_their_lists():
    for p in make_people(300, seed=1):
        assert set(p.attributes) == set(ATTRIBUTES)
        assert p.attributes["birth_city"] in CITIES
        assert p.attributes["occupation"] in OCCUPATIONS
        assert p.attributes["instrument"] in INSTRUMENTS
        assert p.attributes["employer"] in EMPLOYERS
        assert 1940 <= int(p.attributes["birth_year"]) <= 1999


def test_split_is_disjoint_complete_sized_and_deterministic():
    people = make_people(200, seed=0)
    retain, forget, holdout = split_people(people, forget_fraction=0.1, holdout_fraction=0.15, seed=7)
    assert (len(retain), len(forget), len(holdout)) == (150, 20, 30)
    ids = [{p.person_id for p in g} for g in (retain, forget, holdout)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert ids[0] | ids[1] | ids[2] == {p.person_id for p in people}
    for group in (retain, forget, holdout):  # input order kept
        assert [p.person_id for p in group] == sorted(p.person_id for p in group)
    assert split_people(people, 0.1, 0.15, seed=7) == (retain, forget, holdout)
    assert split_people(people, 0.1, 0.15, seed=8) != (retain, forget, holdout)
    labels = split_of(retain, forget, holdout)
    assert labels[forget[0].person_id] == "forget" and labels[holdout[0].person_id] == "holdout"
    with pytest.raises(ValueError, match="exceed"):
        split_people(people, 0.6, 0.6)
    with pytest.raises(ValueError, match="forget_fraction"):
        split_people(people, 1.5, 0.0)


def test_records_have_stable_ids_and_fields():
    people = make_people(12, seed=2)
    records = fact_records(people, seed=2)
    assert len(records) == 12 * 2 * len(ATTRIBUTES)
    assert len({r.fact_id for r in records}) == len(records)
    r = records[0]
    assert (r.fact_id, r.kind, r.attribute, r.person_id) == ("p0000-bio-birth_city", "bio", "birth_city", "p0000")
    assert set(r.as_dict()) == {"fact_id", "person_id", "name", "kind", "attribute", "template", "prompt",
                                "completion", "prefix", "continuation", "answer", "split"}
    assert fact_records(people, seed=2) == records
    assert [x.kind for x in fact_records(people, seed=2, kinds=("qa",))] == ["qa"] * 12 * len(ATTRIBUTES)
    with pytest.raises(ValueError, match="kind"):
        fact_records(people, kinds=("essay",))
    with pytest.raises(ValueError, match="bio_prompt"):
        fact_records(people, bio_prompt="name")


def test_a_persons_records_do_not_depend_on_the_others():
    people = make_people(30, seed=5)
    assert fact_records(people[10:15], seed=5) == [r for r in fact_records(people, seed=5)
                                                   if r.person_id in {p.person_id for p in people[10:15]}]


def test_both_bio_templates_are_used():
    records = fact_records(make_people(40, seed=0), seed=0, kinds=("bio",))
    for attr in ATTRIBUTES:
        assert {r.template for r in records if r.attribute == attr} == {0, 1}


def test_qa_answers_are_the_attributes():
    people = {p.person_id: p for p in make_people(50, seed=4)}
    for r in fact_records(list(people.values()), seed=4, kinds=("qa",)):
        value = people[r.person_id].attributes[r.attribute]
        assert r.answer == value
        assert r.completion == f" {value}."
        assert normalise_answer(r.completion) == value.lower()
        assert r.prompt.startswith("Question: ") and r.prompt.endswith("\nAnswer:")
        assert people[r.person_id].name in r.prompt
        assert (r.prefix, r.continuation) == (r.prompt, r.completion)


def test_bio_prefix_and_continuation_rebuild_the_sentence():
    people = {p.person_id: p for p in make_people(50, seed=4)}
    masked = fact_records(list(people.values()), seed=4, kinds=("bio",), bio_prompt="prefix")
    for r, m in zip(fact_records(list(people.values()), seed=4, kinds=("bio",)), masked, strict=True):
        person = people[r.person_id]
        assert r.prefix.endswith(person.name) and person.name not in r.continuation
        value = person.attributes[r.attribute]
        head, tail = BIO_TEMPLATES[r.attribute][r.template]
        article = "an" if value[0] in "aeiou" else "a"
        sentence = (head + tail).format(name=person.name, value=value, article=article)
        assert r.text == r.prefix + r.continuation == sentence
        assert (r.prompt, r.completion) == ("", sentence)  # default: trained as plain text
        assert (m.prompt, m.completion) == (r.prefix, r.continuation) and m.text == sentence
        assert r.continuation.endswith(f" {value}.") and r.answer == value
    occupations = [r.completion for r in fact_records(list(people.values()), seed=4, kinds=("bio",))
                   if r.attribute == "occupation" and r.template == 0]
    assert any(" an " in c for c in occupations) and any(" a " in c for c in occupations)


def test_split_labels_reach_the_records_and_table():
    people = make_people(20, seed=0)
    retain, forget, holdout = split_people(people, 0.25, 0.25, seed=0)
    records = fact_records(people, seed=0, split=split_of(retain, forget, holdout))
    assert {r.split for r in records if r.person_id == forget[0].person_id} == {"forget"}
    table = facts_table(records)
    assert table.num_rows == len(records)
    assert table.column("split").to_pylist() == [r.split for r in records]
    assert str(table.schema.field("template").type) == "int32"


def test_ingest_facts_writes_a_prompt_completion_dataset(tmp_path):
    store = stores.open(tmp_path / "store")
    records = fact_records(make_people(5, seed=0), seed=0)
    ingest_facts(store, records, "facts", config={"generator": "facts", "n": 5}, seed=0)
    df = store.read_samples("facts", columns=["sample_id", "fact_id", "prompt", "completion", "kind"])
    assert df.height == len(records)
    assert df["fact_id"].to_list() == [r.fact_id for r in records]
    assert df["prompt"].to_list() == [r.prompt for r in records]
    assert df["sample_id"].n_unique() == len(records)


def test_tokenizer_round_trips_and_covers_unseen_names():
    people = make_people(60, seed=0)
    records = fact_records(people, seed=0)
    tok = train_facts_tokenizer(records, vocab_size=400)
    assert len(tok) == 400
    for r in records[:20]:
        assert tok.decode(tok(r.text)["input_ids"]) == r.text
    unseen = make_people(80, seed=0)[60:]
    assert all(tok.unk_token_id not in tok(p.name)["input_ids"] for p in unseen)
    assert isinstance(records[0], FactRecord)
