"""Ranked retrieval of what cli-ai knows, for a goal in plain words.

The documents are the catalogue entries (sysctl params, Mosquitto options and
PostgreSQL settings:
name, description, symptoms, error messages, workloads, tools) and the curated
workload templates (title, summary and the phrases people use for them). BM25
(the `bm25s` library) ranks them against the goal; a Snowball stemmer makes
"files" meet "file" and "watches" meet "watch". Each hit keeps the goal words
that matched it, so a plan can say which words led to which entries.

Entries and templates are ranked in two indexes (see `default_indexes`).
BM25's scores are additive over a query's terms, so each index keeps, per
stem, the score bm25s gives every document, and a query sums its stems'
rows. Those rows depend only on the data files; they are cached
(`cache.py`), so a plan imports bm25s (and numpy and scipy under it) only
when the data changed. A goal word the index does not know may be read as
a typo of one it does (`Index.read_as`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Words that say nothing about *what* to tune: English function words and the
# verbs and nouns of every tuning request ("make my server faster").
STOPWORDS = frozenset("""
a about after again all also am an and any are as at be because been being but by can could did do does doing
down during each few for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my myself no nor not of off on once only or other our ours out over own same she should
so some such than that the their them then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself please thanks thank
tune tuning tuned optimise optimize optimised optimized improve improves better best faster fast speed speeds
make makes made help need needs want wants get gets got keep keeps kept go goes going really lot lots much many
machine machines box host hosts server servers system systems linux kernel setting settings config configuration
performance perform performs work works working run runs running use using used thing things stuff way ways
sometimes often always every still seem seems like also anything something everything someone now today
low high once again starts start started seconds minutes hours quite bit workload workloads
slow slower slowly sluggish
""".split())

_WORD = re.compile(r"[a-z0-9]+")
# How a person names the benchmarks of the strategist's table.
BENCHMARK_WORDS = {
    "pgbench": "pgbench tps", "wrk": "wrk http requests", "wrk_close": "wrk new connections",
    "redis": "redis-benchmark", "fio_randwrite_sync": "fio random writes", "fio_seqwrite": "fio sequential writes",
    "fio_seqread": "fio sequential reads", "sysbench_cpu": "sysbench cpu", "sysbench_memory": "sysbench memory",
    "tcp_accept": "accept rate", "mqtt": "mqtt",
}
PHRASE_BONUS = 1.0  # per word of a whole symptom quoted (a longer message is more specific)
MIN_PHRASE_WORDS = 3  # shorter symptoms ("syn flood") are ordinary words, left to BM25
# A goal word the index does not know is read as the closest word it does
# ("ephemral" as "ephemeral", "swapinng" as "swapping"), if it is long enough
# for a slip of the keyboard to leave it recognisable, close enough
# (difflib's ratio: 2 * matching characters / both lengths), starts with the
# same letter, and is not an English word in its own right ("billing" is not
# a misspelt "killing", nor "model" a misspelt "mode").
MIN_TYPO_LENGTH = 5
TYPO_CUTOFF = 0.85
CACHE_FORMAT = "retrieval 1"  # change it when what is cached changes shape or meaning
MIN_SPLIT_PART = 3  # "timewait" is "time wait"; parts shorter than this join too many words by chance


@lru_cache(maxsize=1)
def _english() -> frozenset[str]:
    """pyspellchecker's English words of a typo's length (its list takes about 0.3 s to
    load, so it is loaded only when a goal has a candidate typo, and cached)."""
    from cli_ai.strategist import cache

    key = cache.key_of([CACHE_FORMAT, _package_version("pyspellchecker"), str(MIN_TYPO_LENGTH)])
    name = f"english-{key[:20]}.json"
    found = cache.load_json(name)
    if isinstance(found, dict) and found.get("key") == key and isinstance(found.get("words"), str):
        return frozenset(found["words"].split("\n"))  # one string: ten times faster to read than a list
    from spellchecker import SpellChecker

    english = frozenset(w for w in SpellChecker(language="en", distance=1).word_frequency.keys()
                        if len(w) >= MIN_TYPO_LENGTH)
    cache.store_json(name, {"key": key, "words": "\n".join(sorted(english))}, prefix="english-")
    return english


def is_english_word(word: str) -> bool:
    return word.lower() in _english()


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """Lower-case words; '_', '.', '-' and '/' split ('vm.max_map_count' -> vm max map count)."""
    return _WORD.findall(text.lower())


def tokens(text: str) -> list[str]:
    """The stemmed content words of `text`, in order (duplicates kept: BM25 counts them)."""
    kept = [w for w in words(text) if w not in STOPWORDS and not w.isdigit()]
    return _stemmer().stemWords(kept)


@dataclass(frozen=True)
class Document:
    """One thing cli-ai knows: a catalogue entry or a workload template."""

    id: str  # "sysctl:vm.max_map_count", "mosquitto:max_inflight_messages", "template:web_server"
    kind: str  # "entry" | "template" | "decline" (a kind of request cli-ai says no to)
    target: str  # the target that tunes it
    name: str  # param name or template id
    text: str  # what was indexed
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Hit:
    doc: Document
    score: float
    matched: tuple[str, ...]  # the goal's own words that matched the document
    phrases: tuple[str, ...] = ()  # whole symptoms / error messages the goal quotes
    read_as: tuple[tuple[str, str], ...] = ()  # (typed, read as) for the matched words taken as typos
    notes: tuple[str, ...] = ()  # other evidence, in words (declines.py: "it names 'freebsd'")
    decisive: bool = False  # a "not for cli-ai" match that no other evidence outweighs

    def evidence(self) -> str:
        fixed = dict(self.read_as)
        parts = list(self.notes) + [f"the symptom {p!r}" for p in self.phrases]
        parts += [f"{w!r} (read as {fixed[w]!r})" if w in fixed else repr(w) for w in self.matched]
        return ", ".join(parts)


def _entry_text(name: str, raw: dict[str, Any]) -> str:
    k = raw.get("knowledge") or {}
    # The name counts twice: "max map count" in a goal is strong evidence for vm.max_map_count.
    parts = [name, name, raw.get("description", "")]
    for key in ("symptoms", "workloads", "tools"):
        parts.extend(str(x) for x in k.get(key, ()))
    # the benchmarks it can move are searchable too ("pgbench tps is low")
    parts.extend(BENCHMARK_WORDS.get(b, b) for b in k.get("moves", {}))
    return " . ".join(parts)


def _symptom_phrases(doc: "Document") -> tuple[str, ...]:
    k = doc.data.get("knowledge") or {}
    out = []
    for text in k.get("symptoms", ()):
        w = words(str(text))
        if len(w) >= MIN_PHRASE_WORDS:
            out.append(" ".join(w))
    return tuple(out)


def _template_text(raw: dict[str, Any]) -> str:
    """A template's words: its curated phrases, each repeated by its weight, so
    that the curator's judgement survives as term frequency."""
    parts = [raw["title"]]
    for pattern, weight in raw.get("phrases", []):
        text = re.sub(r"[|*]+|\.\.\.", " ", pattern)
        parts.extend([text] * max(1, round(float(weight))))
    parts.extend(raw.get("keywords", []))
    return " . ".join(parts)


def build_documents(catalog: dict[str, Any], templates: list[dict[str, Any]],
                    declines: list[dict[str, Any]] = ()) -> list[Document]:
    docs = []
    for name, raw in catalog.get("sysctl", {}).items():
        docs.append(Document(f"sysctl:{name}", "entry", "sysctl", name, _entry_text(name, raw), raw))
    for name, raw in catalog.get("mosquitto", {}).items():
        docs.append(Document(f"mosquitto:{name}", "entry", "mosquitto", name, _entry_text(name, raw), raw))
    for name, raw in catalog.get("postgres", {}).items():
        docs.append(Document(f"postgres:{name}", "entry", "postgres", name, _entry_text(name, raw), raw))
    for raw in declines:
        docs.append(Document(f"decline:{raw['id']}", "decline", "", raw["id"], " . ".join(raw["text"]), raw))
    for raw in templates:
        if raw["id"] == "general":
            continue  # the fallback has no words of its own
        docs.append(Document(f"template:{raw['id']}", "template", raw.get("target", "sysctl"), raw["id"],
                             _template_text(raw), raw))
    return docs


@dataclass(frozen=True)
class Scored:
    """What BM25 derives from a list of documents: each one's stems, and for
    each stem the score of every document that holds it. BM25 adds its terms'
    scores up, so a query's scores are the sum of its stems' rows."""

    token_sets: list[frozenset[str]]
    terms: dict[str, dict[int, float]]

    def to_json(self) -> dict[str, Any]:
        return {"tokens": [sorted(t) for t in self.token_sets],
                "terms": {s: [[i, v] for i, v in row.items()] for s, row in self.terms.items()}}

    @classmethod
    def from_json(cls, data: Any, n_docs: int) -> "Scored | None":
        """The cached form back, or None when it is not exactly that shape."""
        try:
            raw_tokens, raw_terms = data["tokens"], data["terms"]
            if not (isinstance(raw_tokens, list) and len(raw_tokens) == n_docs and isinstance(raw_terms, dict)):
                return None
            token_sets = []
            for t in raw_tokens:
                if not (isinstance(t, list) and all(isinstance(x, str) for x in t)):
                    return None
                token_sets.append(frozenset(t))
            terms: dict[str, dict[int, float]] = {}
            for stem, row in raw_terms.items():
                if not isinstance(row, list):
                    return None
                cells: dict[int, float] = {}
                for cell in row:
                    i, v = cell
                    if type(i) is not int or not 0 <= i < n_docs or type(v) not in (int, float) \
                            or not math.isfinite(v):
                        return None
                    cells[i] = float(v)
                terms[str(stem)] = cells
            return cls(token_sets, terms)
        except (KeyError, TypeError, ValueError):
            return None


def score_documents(docs: list[Document], b: float) -> Scored:
    """BM25 (bm25s) over the documents' stems, kept as one row of scores per stem."""
    import bm25s

    doc_tokens = [tokens(d.text) for d in docs]
    model = bm25s.BM25(b=b)
    model.index(doc_tokens, show_progress=False)
    terms = {}
    for stem in sorted({t for toks in doc_tokens for t in toks}):
        column = model.get_scores([stem])
        terms[stem] = {int(i): float(column[i]) for i in column.nonzero()[0]}
    return Scored([frozenset(t) for t in doc_tokens], terms)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def cached_scores(kind: str, docs: list[Document], b: float) -> Scored:
    """`score_documents`, from the cache when the same documents were scored before
    by the same libraries (cache.py)."""
    from cli_ai.strategist import cache

    key = cache.key_of([CACHE_FORMAT, repr(b), _package_version("bm25s"), _package_version("snowballstemmer"),
                        _package_version("PyStemmer"), " ".join(sorted(STOPWORDS)),
                        *(f"{d.id}\n{d.text}" for d in docs)])
    name = f"retrieval-{kind}-{key[:20]}.json"
    found = cache.load_json(name)
    scored = Scored.from_json(found, len(docs)) if isinstance(found, dict) and found.get("key") == key else None
    if scored is None:
        scored = score_documents(docs, b)
        cache.store_json(name, {"key": key, **scored.to_json()}, prefix=f"retrieval-{kind}-")
    return scored


class Index:
    """BM25 over the documents; `rank(goal)` gives every document that shares a word with it."""

    def __init__(self, docs: list[Document], *, b: float = 0.75, scored: Scored | None = None):
        """`scored`: the documents' BM25 rows when already known (the cache), else computed."""
        self.docs = docs
        scored = scored or score_documents(docs, b)
        self._token_sets = scored.token_sets
        self._terms = scored.terms
        self._phrases = [_symptom_phrases(d) for d in docs]
        self._stems = set(self._terms)
        # the unstemmed words a typo is compared with (a stem is not a word a person types)
        self._words = {w for d in docs for w in words(d.text) if not w.isdigit() and w not in STOPWORDS}
        self._lexicon = frozenset(self._words)
        self._vocabulary = sorted(w for w in self._words if len(w) >= MIN_TYPO_LENGTH - 1)

    def knows_also(self, other: "Index") -> None:
        """Words of `other` are never read as typos here either ("maxmemory" is a
        Redis setting in the declines; not "max memory" for the kernel entries)."""
        self._lexicon = self._lexicon | other._words

    def read_as(self, word: str) -> str | None:
        """The indexed words an unknown goal word was most likely meant to be
        ("ephemral" -> "ephemeral", "timewait" -> "time wait"), or None."""
        if len(word) < MIN_TYPO_LENGTH or any(c.isdigit() for c in word) or word in self._lexicon:
            return None
        import difflib

        close = [w for w in difflib.get_close_matches(word, self._vocabulary, n=3, cutoff=TYPO_CUTOFF)
                 if w[0] == word[0]]
        # two words run together, each one the index knows ("pagecache")
        split = next((f"{word[:i]} {word[i:]}" for i in range(MIN_SPLIT_PART, len(word) - MIN_SPLIT_PART + 1)
                      if word[:i] in self._words and word[i:] in self._words), None)
        if not (close or split) or is_english_word(word):
            return None
        return close[0] if close else split

    def rank(self, goal: str) -> list[Hit]:
        typed = [w for w in words(goal) if w not in STOPWORDS and len(w) > 1 and not w.isdigit()]
        query_words: list[str] = []
        stems: list[str] = []
        fixes: dict[str, str] = {}
        for w, s in zip(typed, _stemmer().stemWords(typed)):
            meant = self.read_as(w) if s not in self._stems else None
            if meant is None:
                query_words.append(w)
                stems.append(s)
                continue
            fixes[w] = meant
            for part in meant.split():
                query_words.append(w)
                stems.append(_stemmer().stemWord(part))
        by_stem: dict[str, str] = {}
        for w, s in zip(query_words, stems):
            by_stem.setdefault(s, w)
        known = [s for s in dict.fromkeys(stems) if s in self._stems]
        # phrases are looked for in the goal as read ("too many open files" in "too many opne files")
        goal_text = " " + " ".join(fixes.get(w, w) for w in words(goal)) + " "
        scores = [0.0] * len(self.docs)
        for stem in known:
            for i, v in self._terms[stem].items():
                scores[i] += v
        hits = []
        for i, score in enumerate(scores):
            doc = self.docs[i]
            # A whole symptom or error message quoted in the goal is the strongest
            # evidence there is ("too many open files" is fs.file-max's own message).
            phrases = tuple(p for p in self._phrases[i] if f" {p} " in goal_text)
            score = float(score) + PHRASE_BONUS * max((len(p.split()) for p in phrases), default=0)
            if score <= 0:
                continue
            matched = tuple(dict.fromkeys(by_stem[s] for s in known if s in self._token_sets[i]))
            read_as = tuple((w, fixes[w]) for w in matched if w in fixes)
            hits.append(Hit(doc, round(score, 4), matched, phrases, read_as))
        hits.sort(key=lambda h: (-h.score, h.doc.id))
        return hits


@lru_cache(maxsize=1)
def default_indexes() -> tuple[Index, Index]:
    """(catalogue entries, workload templates): two indexes, so that BM25's
    length normalisation compares an entry with entries and a template with
    templates (a template's text is many times an entry's)."""
    import json
    from pathlib import Path

    from cli_ai.safety.catalog import CATALOG_FILE

    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    from cli_ai.targets.postgres.catalog import CATALOG_FILE as POSTGRES_CATALOG

    # PostgreSQL's settings live with their target; they are searchable by name and description
    catalog["postgres"] = json.loads(POSTGRES_CATALOG.read_text(encoding="utf-8"))["settings"]
    templates_file = Path(__file__).with_name("templates.json")
    data = json.loads(templates_file.read_text(encoding="utf-8"))
    docs = build_documents(catalog, data["workloads"], data.get("declines", []))
    # Templates are long lists of curated phrases: a weak length normalisation
    # (b) keeps a long template from losing to a short one on the same words.
    entries = [d for d in docs if d.kind == "entry"]
    others = [d for d in docs if d.kind in ("template", "decline")]
    entry_index = Index(entries, scored=cached_scores("entries", entries, 0.75))
    other_index = Index(others, b=0.3, scored=cached_scores("templates", others, 0.3))
    entry_index.knows_also(other_index)
    other_index.knows_also(entry_index)
    return entry_index, other_index


__all__ = ["Document", "Hit", "Index", "Scored", "score_documents", "cached_scores", "build_documents", "default_indexes", "tokens", "words", "STOPWORDS"]
