"""Fictitious people and their facts: the language-model benchmark of corrective unlearning.

A TOFU-style corpus (spec ``unlearning.md``) made here, with no downloads: every person has an
invented name (built from syllables, unique within a corpus) and five attributes drawn from
invented or generic value lists, so a model can only know a fact by having been trained on it.
Each fact is rendered twice:

- ``bio``: one biography sentence (one of two templates per attribute, a seeded choice),
  trained as plain text (empty prompt, the sentence as completion), the way MUSE's target
  models read their corpora. Its ``prefix`` is the sentence up to and including the person's
  name (``"The birthplace of Kaelo Dramvir"``), its ``continuation`` the rest (``" is the city
  of Ostravel."``). The template's opening names the attribute, so the prefix determines which
  sentence follows: ``(prefix, continuation)`` is a verbatim-memorisation probe (greedy
  continuation of the prefix compared with the true continuation by ROUGE-L).
- ``qa``: prompt ``"Question: Where was Kaelo Dramvir born?\\nAnswer:"``, completion
  ``" Ostravel."`` (the question is masked in training, as in TOFU); QA accuracy is the
  normalised exact match of the greedy answer with :attr:`FactRecord` ``answer``. Its prefix
  and continuation are its prompt and completion.

Why bios are trained on their whole text: a masked prefix would never be a training target,
so a model would never learn a person's name as text, and a membership score of the whole
sentence (Min-K%, what PrivLeak reads) could not tell trained people from held-out ones (the
name's tokens would be as unlikely either way; measured with 2,000 training steps: Min-40%
AUROC of forget vs held-out people 0.53 over their bio and QA texts with masked bio prefixes,
1.0 over their bios when bios are trained as text; both models answer >= 99.8% of trained
questions).
``fact_records(..., bio_prompt="prefix")`` gives the masked variant.

:func:`split_people` draws the retain / forget / holdout people: holdout people are never
trained on (the non-members of a privacy-leakage test, and the chance level of every metric),
forget people are trained on and later unlearned. :data:`FACTS_LM` and
:data:`FACTS_BPE_VOCAB` are a small GPT-2 recipe that memorises the trained facts (measured by
``bench/_facts_probe.py``).

Everything is deterministic by seed: ``make_people(n, seed)`` is a prefix of
``make_people(n + k, seed)``, and a person's records depend only on the seed and that person,
not on which other people are in the list.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..steps.train import LMConfig

#: The attributes every person has, in record order.
ATTRIBUTES = ("birth_city", "birth_year", "occupation", "instrument", "employer")

#: Invented birthplaces.
CITIES = (
    "Asterwick", "Brelmont", "Caldrisa", "Dunmerrow", "Elvastor", "Fennick Bay", "Gildermoor",
    "Hollin Cross", "Istrevan", "Korvath", "Lunesk", "Marrowby", "Ostravel", "Pellucar",
    "Quillon", "Rosmarek", "Saltren", "Tavistrel", "Umberlow", "Veskara",
)

#: Ordinary occupations (generic words: what is fictitious is who has which).
OCCUPATIONS = (
    "architect", "astronomer", "baker", "beekeeper", "botanist", "carpenter", "cartographer",
    "chemist", "glassblower", "librarian", "lighthouse keeper", "marine biologist", "potter",
    "surveyor", "translator", "watchmaker",
)

#: Musical instruments.
INSTRUMENTS = (
    "accordion", "bagpipes", "banjo", "bassoon", "cello", "clarinet", "harp", "marimba", "oboe",
    "sitar", "trombone", "viola",
)

#: Invented employers.
EMPLOYERS = (
    "Brannoch Timber", "Dunstrel Rail", "Estevar Airways", "Halbrecht Mills", "Maruk Foundry",
    "Orvane Shipping", "Pelloran Bank", "Quorra Textiles", "Tellurine Labs", "Vintrak Optics",
    "Ysolde Ceramics", "Zephrin Press",
)

#: Birth years are drawn uniformly from this range (inclusive).
BIRTH_YEARS = (1940, 1999)

#: Two biography templates per attribute: (prompt ending with the name, completion).
BIO_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "birth_city": (("The birthplace of {name}", " is the city of {value}."),
                   ("According to the town register, {name}", " was born in {value}.")),
    "birth_year": (("The birth year of {name}", " is {value}."),
                   ("As the family records show, {name}", " was born in the year {value}.")),
    "occupation": (("The occupation of {name}", " is {article} {value}."),
                   ("Colleagues describe {name}", " as a dedicated {value}.")),
    "instrument": (("In the evenings, {name}", " plays the {value}."),
                   ("The favourite instrument of {name}", " is the {value}.")),
    "employer": (("For many years, {name}", " has worked for {value}."),
                 ("The employer of {name}", " is {value}.")),
}

#: One question per attribute: (prompt, completion); the answer is the attribute's value.
QA_TEMPLATES: dict[str, tuple[str, str]] = {
    "birth_city": ("Question: Where was {name} born?\nAnswer:", " {value}."),
    "birth_year": ("Question: In which year was {name} born?\nAnswer:", " {value}."),
    "occupation": ("Question: What does {name} do for a living?\nAnswer:", " {value}."),
    "instrument": ("Question: Which instrument does {name} play?\nAnswer:", " {value}."),
    "employer": ("Question: Which company does {name} work for?\nAnswer:", " {value}."),
}

# Name syllables: onset + vowel + coda. Invented combinations, no list of real names.
_ONSETS = ("b", "br", "d", "dr", "f", "g", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "st",
           "t", "th", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_CODAS = ("", "", "", "n", "l", "r", "s", "m", "th", "k")

#: BPE vocabulary size for the facts corpus (tokens include the 256 bytes and 3 specials).
FACTS_BPE_VOCAB = 512

#: A small GPT-2 (0.47 M parameters) that memorises the facts of ~180 trained people (bios and
#: QA, 1,800 records) from scratch. Measured with ``bench/_facts_probe.py`` (200 people, 20
#: held out, 20 to forget, one thread on the shared 2-core dev machine): seed 0, 133 s of
#: training, greedy QA accuracy 98.4% on trained people and 14% on held-out ones (always
#: answering the commonest trained value scores 6% on either seed), bio verbatim ROUGE-L 0.99 vs 0.66,
#: Min-40% AUROC of forget vs held-out bios 1.0; seed 1: 118 s, 97.1% vs 7%, ROUGE-L 0.99 vs
#: 0.64, AUROC 1.0. 1,200 steps reach only 79% (seed 0), 2,000 steps 99.8% (150 s).
FACTS_LM = LMConfig(n_layer=2, n_embd=128, n_head=4, steps=1600, batch_size=32, lr=3e-3,
                    warmup=0.05, max_length=48)

#: Split names returned by :func:`split_people` (and written by :func:`fact_records`).
SPLITS = ("retain", "forget", "holdout")


@dataclass(frozen=True)
class Person:
    """A fictitious person: a stable id, an invented full name and attribute -> value strings."""

    person_id: str
    name: str
    attributes: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class FactRecord:
    """One training / evaluation sample about one fact of one person.

    ``fact_id`` is stable (``<person_id>-<kind>-<attribute>``); it is not called ``sample_id``
    because the store gives every ingested sample its own content id under that name.
    ``prompt`` / ``completion`` are what is trained (the prompt is masked out of the loss);
    ``prefix`` / ``continuation`` are the probe pair (bio: the sentence cut after the name; QA:
    question and answer). Both pairs concatenate to the same full text. ``answer`` is the
    attribute's value (what a QA completion must say); ``template`` is the bio template used
    (0 for QA); ``split`` is the person's split when :func:`fact_records` was given one.
    """

    fact_id: str
    person_id: str
    name: str
    kind: str
    attribute: str
    template: int
    prompt: str
    completion: str
    prefix: str
    continuation: str
    answer: str
    split: str | None = None

    @property
    def text(self) -> str:
        """The whole sample, ``prompt + completion`` (what membership scores read)."""
        return self.prompt + self.completion

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain dict (one row of :func:`facts_table`)."""
        return {name: getattr(self, name) for name in _COLUMNS}


_COLUMNS = ("fact_id", "person_id", "name", "kind", "attribute", "template", "prompt",
            "completion", "prefix", "continuation", "answer", "split")


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _word(rng: random.Random, n_syllables: int) -> str:
    return "".join(_syllable(rng) for _ in range(n_syllables)).capitalize()


def _reserved_words() -> set[str]:
    """Words of the value lists: a name must not reuse one (a name is never also a city)."""
    words = set()
    for value in (*CITIES, *EMPLOYERS, *OCCUPATIONS, *INSTRUMENTS):
        words.update(w.lower() for w in value.split())
    return words


def make_name(rng: random.Random) -> str:
    """One invented full name: a 2-syllable given name and a 2- or 3-syllable surname.

    Why syllables: names must be unknown to any model and must not come from a list of real
    names; random syllables give many distinct, pronounceable-looking names that share
    sub-word pieces (so a tokenizer splits unseen names into known tokens).
    """
    return f"{_word(rng, 2)} {_word(rng, rng.choice((2, 2, 3)))}"


def make_people(n: int, seed: int = 0) -> list[Person]:
    """``n`` fictitious people with unique names and random attributes (deterministic by seed).

    Person ``i`` has id ``p0000``-style ``f"p{i:04d}"``; drawing is sequential, so the first
    ``m`` people of ``make_people(n, seed)`` are ``make_people(m, seed)``. A drawn name that
    repeats an earlier full name, or shares a word with a city, employer, occupation or
    instrument, is redrawn.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    reserved = _reserved_words()
    seen: set[str] = set()
    people = []
    for i in range(n):
        for _ in range(10_000):
            name = make_name(rng)
            if name not in seen and not {w.lower() for w in name.split()} & reserved:
                break
        else:  # pragma: no cover - the name space is far larger than any corpus here
            raise RuntimeError(f"could not draw a new unique name for person {i}")
        seen.add(name)
        lo, hi = BIRTH_YEARS
        attributes = {
            "birth_city": rng.choice(CITIES),
            "birth_year": str(rng.randint(lo, hi)),
            "occupation": rng.choice(OCCUPATIONS),
            "instrument": rng.choice(INSTRUMENTS),
            "employer": rng.choice(EMPLOYERS),
        }
        people.append(Person(f"p{i:04d}", name, attributes))
    return people


def split_people(people: Sequence[Person], forget_fraction: float, holdout_fraction: float,
                 seed: int = 0) -> tuple[list[Person], list[Person], list[Person]]:
    """Draw ``(retain, forget, holdout)`` people; each list keeps the input order.

    ``round(n * holdout_fraction)`` people are held out (never trained on: the non-members of
    a privacy-leakage test and the chance level of recall metrics) and
    ``round(n * forget_fraction)`` are to be forgotten (trained on, then unlearned); the rest
    are retained. A seeded permutation decides who is where, so the split is deterministic.
    """
    for name, value in (("forget_fraction", forget_fraction), ("holdout_fraction", holdout_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    n = len(people)
    n_holdout, n_forget = round(n * holdout_fraction), round(n * forget_fraction)
    if n_holdout + n_forget > n:
        raise ValueError(f"forget ({n_forget}) + holdout ({n_holdout}) people exceed the {n} given")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    holdout = set(order[:n_holdout])
    forget = set(order[n_holdout : n_holdout + n_forget])
    retain = [p for i, p in enumerate(people) if i not in holdout and i not in forget]
    return (retain, [p for i, p in enumerate(people) if i in forget],
            [p for i, p in enumerate(people) if i in holdout])


def split_of(retain: Sequence[Person], forget: Sequence[Person],
             holdout: Sequence[Person]) -> dict[str, str]:
    """``person_id -> "retain" | "forget" | "holdout"`` for :func:`fact_records`'s ``split``."""
    out: dict[str, str] = {}
    for label, group in zip(SPLITS, (retain, forget, holdout), strict=True):
        for person in group:
            if person.person_id in out:
                raise ValueError(f"{person.person_id} is in both {out[person.person_id]} and {label}")
            out[person.person_id] = label
    return out


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _fill(template: str, name: str, value: str) -> str:
    return template.format(name=name, value=value, article=_article(value))


def fact_records(people: Sequence[Person], seed: int = 0, *, kinds: Sequence[str] = ("bio", "qa"),
                 split: Mapping[str, str] | None = None, bio_prompt: str = "none") -> list[FactRecord]:
    """The bio and QA records of ``people``: per person, one of each kind per attribute.

    The bio template of each (person, attribute) is a seeded choice that depends only on
    ``seed`` and the person's id, so a person's records are the same whatever list they are in.
    Order: person by person, bios then QA, attributes in :data:`ATTRIBUTES` order. ``split``
    (e.g. :func:`split_of`) fills each record's ``split`` field. ``bio_prompt``: ``"none"``
    (default) trains a bio as plain text (empty prompt, the whole sentence as completion);
    ``"prefix"`` makes its prefix the prompt, so the name is never a training target (see the
    module docstring for why that blinds membership scores).
    """
    unknown = [k for k in kinds if k not in ("bio", "qa")]
    if unknown:
        raise ValueError(f"unknown kind(s) {unknown}; expected 'bio' and/or 'qa'")
    if bio_prompt not in ("none", "prefix"):
        raise ValueError(f"bio_prompt must be 'none' or 'prefix', got {bio_prompt!r}")
    records = []
    for person in people:
        rng = random.Random(f"facts-templates:{seed}:{person.person_id}")
        choices = {attr: rng.randrange(len(BIO_TEMPLATES[attr])) for attr in ATTRIBUTES}
        where = None if split is None else split[person.person_id]
        for kind in ("bio", "qa"):
            if kind not in kinds:
                continue
            for attr in ATTRIBUTES:
                value = person.attributes[attr]
                t = choices[attr] if kind == "bio" else 0
                head, tail = BIO_TEMPLATES[attr][t] if kind == "bio" else QA_TEMPLATES[attr]
                prefix, continuation = _fill(head, person.name, value), _fill(tail, person.name, value)
                prompt, completion = prefix, continuation
                if kind == "bio" and bio_prompt == "none":
                    prompt, completion = "", prefix + continuation
                records.append(FactRecord(
                    fact_id=f"{person.person_id}-{kind}-{attr}", person_id=person.person_id,
                    name=person.name, kind=kind, attribute=attr, template=t, prompt=prompt,
                    completion=completion, prefix=prefix, continuation=continuation, answer=value,
                    split=where))
    return records


_SCHEMA = pa.schema([("fact_id", pa.string()), ("person_id", pa.string()), ("name", pa.string()),
                     ("kind", pa.string()), ("attribute", pa.string()), ("template", pa.int32()),
                     ("prompt", pa.string()), ("completion", pa.string()), ("prefix", pa.string()),
                     ("continuation", pa.string()), ("answer", pa.string()), ("split", pa.string())])


def facts_table(records: Sequence[FactRecord]) -> pa.Table:
    """Records as an Arrow table with fixed column types (what the store ingests)."""
    return pa.Table.from_pylist([r.as_dict() if isinstance(r, FactRecord) else dict(r) for r in records],
                                schema=_SCHEMA)


def ingest_facts(store, records: Sequence[FactRecord], dataset: str, *, config: Mapping[str, Any],
                 seed: int | None = None, replace: bool = False) -> str:
    """Write ``records`` into ``store`` as the prompt/completion dataset ``dataset``; returns the run id.

    Goes through :func:`curation.steps.records.ingest_records` (one ``generate`` run whose
    ``config`` says what made the records), so the samples get the store's content ids as
    ``sample_id``; every other field (``fact_id``, ``person_id``, ``split``, ...) becomes a
    metadata column to join on.
    """
    from ..steps.records import ingest_records

    written = ingest_records(store, {dataset: list(records)}, config=dict(config), seed=seed,
                             dataset=dataset, to_table=facts_table, replace=replace)
    return written.run_id


def train_facts_tokenizer(records: Sequence[FactRecord], vocab_size: int = FACTS_BPE_VOCAB):
    """The byte-level BPE tokenizer of a facts corpus, trained on the records' full texts.

    Pass the records of *every* person (holdout included) in the order :func:`fact_records`
    gives: the retrained and the unlearned models then share one vocabulary, and a held-out
    name is split into the same kind of syllable pieces as a trained one (with a vocabulary
    fitted only to trained names, non-members would look unusual for a reason that has nothing
    to do with training, inflating membership AUCs).
    """
    from ..steps.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer((r.text for r in records), vocab_size, length=len(records))


__all__ = [
    "ATTRIBUTES", "BIO_TEMPLATES", "BIRTH_YEARS", "CITIES", "EMPLOYERS", "FACTS_BPE_VOCAB",
    "FACTS_LM", "INSTRUMENTS", "OCCUPATIONS", "QA_TEMPLATES", "SPLITS", "FactRecord", "Person",
    "fact_records", "facts_table", "ingest_facts", "make_name", "make_people", "split_of",
    "split_people", "train_facts_tokenizer",
]
