"""Synthetic NER data for the spaCy backend's tests and benchmark (no downloads, deterministic).

Sentences come from templates with people, cities and companies slotted in; each comes with its exact
code-point spans. Names and templates are split into a training part and a held-out part, so held-out
F1 measures generalisation to unseen names in unseen contexts, not memory.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labelzoo.metrics import SpanCounts, count_spans

PEOPLE = [
    "Anna Schmidt", "José Álvarez", "Li Wei", "Olga Petrova", "Tom Baker", "Marie Curie", "Ahmed Khan",
    "Sara Lind", "Jonas Berg", "Priya Patel", "Ivan Horvat", "Emma Stone", "Zoë Müller", "Kofi Mensah",
    "Lena Nowak", "Hugo Martín", "Aiko Tanaka", "Rui Costa", "Nina Kovač", "Omar Haddad",
]
CITIES = [
    "Berlin", "Zürich", "São Paulo", "Kraków", "Lyon", "Oslo", "Nairobi", "Québec", "Osaka", "Lima",
    "Porto", "Tartu", "Málaga", "Gdańsk", "Reykjavík", "Cork", "Graz", "Turku", "Bergen", "Leeds",
]
COMPANIES = [
    "Acme Works", "Globex", "Initech", "Umbrella Group", "Hooli", "Vandelay Industries", "Stark Labs",
    "Wayne Holdings", "Soylent Foods", "Tyrell Systems",
]
TEMPLATES = [
    "{PERSON} moved to {CITY} last year.",
    "Yesterday {PERSON} flew from {CITY} to {CITY}.",
    "{PERSON} said the weather in {CITY} was fine.",
    "In {CITY}, {PERSON} opened a bakery.",
    "The mayor of {CITY} met {PERSON} on Monday.",
    "{PERSON} works for {ORG} in {CITY}.",
    "{ORG} hired {PERSON} to run its office in {CITY}.",
    "Shares of {ORG} rose after {PERSON} spoke in {CITY}.",
    "{PERSON} lives in {CITY} 🏠 and cycles to work.",
    "Dear {PERSON},\r\nwelcome to {CITY}! 🎉",
    "We visited {CITY} with {PERSON}.\r\nIt rained.",
    "Nobody from {ORG} came to the meeting.",
    "The train was late again this morning.",
    "{PERSON} and {PERSON} founded {ORG}.",
    "After the talk in {CITY}, {PERSON} thanked {ORG}.",
    "Our team met {PERSON} at the {ORG} stand in {CITY}.",
    "🎉 {PERSON} won a prize in {CITY}.",
    "Café owner {PERSON} (née Dupont) left {CITY} for {CITY}.",
]
# Truly ambiguous data: each of these sentences is taught once with the name as a person and once as
# a city, so a model that learned it can only be unsure there
AMBIGUOUS = [
    (template.format(name), template.index("{"), template.index("{") + len(name))
    for name in ("Victoria", "Jordan", "Florence", "Lincoln", "Sydney", "Austin")
    for template in ("Postcards from {} arrived today.", "Everyone was talking about {}.")
]  # (text, start, end)
HELD_OUT_TEMPLATES = [
    "Last week {PERSON} returned to {CITY} for a conference.",
    "{ORG} opened a new office in {CITY}, according to {PERSON}.",
    "It is cold in {CITY} today, {PERSON} wrote.",
    "Coffee prices went up again.",
]
POOLS = {"PERSON": PEOPLE, "CITY": CITIES, "ORG": COMPANIES}
SLOT = re.compile(r"\{(PERSON|CITY|ORG)\}")


@dataclass(frozen=True)
class Sentence:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # code-point start, end (exclusive), label


def fill(template: str, rng: random.Random, pools: dict[str, Sequence[str]], names: dict[str, str] | None = None
         ) -> Sentence:
    """The template with a random pool value in each slot; ``names`` renames labels (e.g. CITY → GPE) and
    leaves the slots of labels it does not list unlabelled."""
    out, spans, pos = "", [], 0
    for match in SLOT.finditer(template):
        out += template[pos : match.start()]
        value = rng.choice(pools[match.group(1)])
        label = match.group(1) if names is None else names.get(match.group(1))
        if label is not None:
            spans.append((len(out), len(out) + len(value), label))
        out += value
        pos = match.end()
    return Sentence(out + template[pos:], tuple(spans))


def split_pools(held_out: bool) -> dict[str, Sequence[str]]:
    """Three quarters of each name list for training, the last quarter for held-out sentences."""
    return {label: names[len(names) * 3 // 4 :] if held_out else names[: len(names) * 3 // 4]
            for label, names in POOLS.items()}


#: the label config the learning tests annotate, and the synthetic labels' names in it
LEARNING_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="Person"/><Label value="City"/><Label value="Company"/>
  </Labels>
</View>"""
LEARNING_NAMES = {"PERSON": "Person", "CITY": "City", "ORG": "Company"}


def sentences(n: int, seed: int, *, held_out: bool = False, names: dict[str, str] | None = None) -> list[Sentence]:
    rng = random.Random(seed)
    templates = HELD_OUT_TEMPLATES if held_out else TEMPLATES
    pools = split_pools(held_out)
    return [fill(rng.choice(templates), rng, pools, names) for _ in range(n)]


def labels_result(sentence: Sentence, names: dict[str, str], from_name: str = "label", to_name: str = "text"
                  ) -> list[dict]:
    """A Label Studio annotation result for the sentence; ``names`` maps its labels to config labels."""
    return [
        {
            "id": f"r{i}", "from_name": from_name, "to_name": to_name, "type": "labels",
            "value": {"start": start, "end": end, "text": sentence.text[start:end], "labels": [names[label]]},
        }
        for i, (start, end, label) in enumerate(sentence.spans)
        if label in names
    ]


def train_pipeline(path: Path, n: int = 120, epochs: int = 8, names: dict[str, str] | None = None) -> Path:
    """Train a small English NER pipeline on synthetic sentences with plain spaCy and save it to ``path``:
    a stand-in for an official pipeline (labels PERSON, GPE, ORG by default) that SPACY_MODEL can name."""
    import spacy
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(0)
    rng = random.Random(0)
    names = names or {"PERSON": "PERSON", "CITY": "GPE", "ORG": "ORG"}
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.meta.update(name="synthetic_ner", version="1.0.0")
    examples = [
        Example.from_dict(nlp.make_doc(s.text), {"entities": list(s.spans)})
        for s in sentences(n, seed=7, names=names)
    ]
    for text, start, end in AMBIGUOUS:
        for label in (names["PERSON"], names["CITY"]):
            examples.append(Example.from_dict(nlp.make_doc(text), {"entities": [(start, end, label)]}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=8):
            nlp.update(batch, sgd=optimizer, drop=0.2)
    nlp.to_disk(path)
    return path


def span_f1(gold: Sequence[Sentence], results: Sequence[Sequence[dict]], names: dict[str, str]) -> float:
    """Micro F1 of predicted Labels results against the sentences' spans (labels renamed by ``names``)."""
    counts = SpanCounts()
    for sentence, result in zip(gold, results, strict=True):
        want = [(start, end, names[label]) for start, end, label in sentence.spans if label in names]
        got = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result]
        counts += count_spans(want, got)
    return counts.f1


GOLD_FILE = Path(__file__).resolve().parents[1] / "data" / "ner_gold.txt"
GOLD_MARK = re.compile(r"\[([^\]]+)\]\(([A-Z_]+)\)")
ONTONOTES = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
             "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL")


def gold_set(path: Path = GOLD_FILE) -> list[Sentence]:
    """The hand-labelled English NER gold set: each line's ``[surface](LABEL)`` marks become exact spans."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, spans, done = "", [], 0
        for mark in GOLD_MARK.finditer(line):
            text += line[done : mark.start()]
            spans.append((len(text), len(text) + len(mark.group(1)), mark.group(2)))
            text += mark.group(1)
            done = mark.end()
        found.append(Sentence(text + line[done:], tuple(spans)))
    return found


def ontonotes_config(labels: Sequence[str] = ONTONOTES) -> str:
    """A label config whose labels are the model's own names, one each (nothing renamed, nothing hidden)."""
    inner = "".join(f'<Label value="{label}"/>' for label in labels)
    return f'<View><Text name="text" value="$text"/><Labels name="label" toName="text">{inner}</Labels></View>'
