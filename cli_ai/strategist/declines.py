"""Evidence that a goal is not a request cli-ai can plan, beyond shared words.

The "not for cli-ai" documents of templates.json compete with the workloads
and the catalogue entries on BM25 scores (offline.py). Three kinds of
evidence a bag of words misses are added here, each from the document's own
data, so that a new kind of refusal is a data change:

* ``names``: the goal names what cli-ai does not tune outright (another
  operating system: "Windows Server", "FreeBSD"), and none of the document's
  ``unless`` words (a Linux distribution) say the machine is a Linux one.
  Such a match is decisive.
* ``leading``: the goal opens with words of another kind of work
  ("explain", "upgrade", "how do i list"): a bonus, so that a goal whose
  symptom matches a catalogue entry strongly still plans.
  Openings listed in ``decisive_leading`` too ("how do i list") decide
  outright: they ask how to look at something, not to change it.
* ``foreign_keys``: the goal asks to set a setting cli-ai does not know
  ("raise clickhouse's max_memory_usage"): a bonus per word of the key, as
  for a quoted symptom. A key is a lower-case word joined by '_' or '.'
  that is neither a catalogue name nor the last part of a sysctl name;
  upper-case error constants (GFP_ATOMIC, TIME_WAIT), function calls
  (io_setup()), sysctl paths and file names are not keys.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Iterable

from cli_ai.strategist.retrieval import PHRASE_BONUS, Hit, words

LEADING_BONUS = 2.0  # as much as a two-word symptom quoted
_KEY = re.compile(r"(?<![\w./-])-{0,2}([a-z][a-z0-9]*(?:[_.][a-z0-9]+)+)(?![\w(/-])")
_SYSCTL_ROOTS = ("net.", "vm.", "kernel.", "fs.", "dev.", "user.", "abi.", "debug.", "sunrpc.", "crypto.")
_FILE = re.compile(r"\.(conf|cnf|log|db|json|ya?ml|ini|service|sock|pid|py|sh|txt|d|so|gz|xml|toml|properties|cfg|"
                   r"io|com|org|net|local|js)$")
# A key is asked about only when the goal sets, sizes or changes something.
_SETTING_WORDS = frozenset("set sets setting raise lower increase decrease bump change tune configure value values "
                           "should recommend recommended".split())


@lru_cache(maxsize=64)
def _compiled(texts: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for any of the phrases `texts`, whole words only; None for none."""
    alternatives = [r"\s+".join(map(re.escape, t.lower().split())) for t in texts if t.strip()]
    if not alternatives:
        return None
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])")


def foreign_keys(goal: str, known: frozenset[str]) -> list[str]:
    """The setting-shaped words of `goal` that name nothing cli-ai tunes."""
    keys = []
    for key in _KEY.findall(goal):
        if key in known or key.startswith(_SYSCTL_ROOTS) or _FILE.search(key):
            continue
        keys.append(key)
    return keys


def known_names(entry_names: Iterable[str]) -> frozenset[str]:
    """Every name a goal may use for a catalogue entry: the whole name and, for
    a dotted sysctl, its last part ("max_map_count")."""
    out = set()
    for name in entry_names:
        name = name.lower()
        out.add(name)
        out.add(name.rsplit(".", 1)[-1])
    return frozenset(out)


def weigh(goal: str, hits: list[Hit], known: frozenset[str]) -> list[Hit]:
    """The decline hits of `goal`, rescored with the evidence above (each
    document that has any, even one BM25 did not rank), best first."""
    text = " ".join(words(goal))
    lowered = goal.lower()
    goal_words = set(text.split())
    by_id = {h.doc.id: h for h in hits}
    from cli_ai.strategist.retrieval import default_indexes

    out = []
    for doc in (d for d in default_indexes()[1].docs if d.kind == "decline"):
        hit = by_id.get(doc.id) or Hit(doc, 0.0, ())
        data = doc.data
        notes: list[str] = []
        bonus = 0.0
        decisive = False
        names = _compiled(tuple(data.get("names", ())))
        unless = _compiled(tuple(data.get("unless", ())))
        if names is not None and (m := names.search(text)) and not (unless is not None and unless.search(text)):
            decisive = True
            notes.append(f"it names {m.group(0)!r}")
        opening = next((w for w in data.get("leading", ()) if f"{text} ".startswith(f"{w} ")), None)
        looking = next((w for w in data.get("decisive_leading", ()) if f"{text} ".startswith(f"{w} ")), None)
        if looking is not None:
            decisive = True  # "how do i list ...": a question about a command, whatever it names
            notes.append(f"it opens with {looking!r}")
        elif opening is not None:
            bonus += LEADING_BONUS
            notes.append(f"it opens with {opening!r}")
        if data.get("foreign_keys") and goal_words & _SETTING_WORDS:
            keys = foreign_keys(lowered, known)
            if keys:
                bonus += PHRASE_BONUS * max(len(words(k)) for k in keys)
                notes.append("it asks about " + ", ".join(repr(k) for k in keys)
                             + ", which is no setting cli-ai knows")
        if notes or hit.score > 0:
            out.append(replace(hit, score=round(hit.score + bonus, 4), notes=hit.notes + tuple(notes),
                               decisive=decisive))
    out.sort(key=lambda h: (-h.decisive, -h.score, h.doc.id))
    return [h for h in out if h.score > 0 or h.decisive]


__all__ = ["weigh", "foreign_keys", "known_names", "LEADING_BONUS"]
