"""The diagnosis of a session's evidence, kept between messages.

A message without new evidence (hint, why, an answer) reuses the last diagnosis; a
message with new evidence reads only the facts stored since. Both caches are bounded.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from grammar.transcript import Evidence
from kb.diagnose import Diagnosis, diagnose

_CACHE_SIZE = 64
_DIAGNOSES: "OrderedDict[tuple, Diagnosis]" = OrderedDict()
_FACTS: "OrderedDict[tuple, tuple[int, int, list]]" = OrderedDict()
_GUARD = threading.Lock()


def session_diagnosis(store, session_id: str, rulebook) -> Diagnosis:
    """The session's diagnosis over all its evidence."""
    count, last = store.evidence_mark(session_id)
    key = (store.path, session_id, count, last, rulebook.identity)
    with _GUARD:
        if key in _DIAGNOSES:
            _DIAGNOSES.move_to_end(key)
            return _DIAGNOSES[key]
    facts_key = (store.path, session_id)
    with _GUARD:
        known_count, known_last, known = _FACTS.get(facts_key, (0, 0, []))
    if known_count > count or known_last > last:      # facts were removed or moved: start over
        known_count, known_last, known = 0, 0, []
    new_facts, unparsed = store.evidence(session_id, after_fact=known_last)
    facts = known + new_facts
    # facts come in the order they were pasted, so their messages in the order they were written
    order = list(dict.fromkeys((f.get("prov") or {}).get("source") for f in facts))
    result = diagnose(Evidence(list(facts), unparsed, len(facts), order), rulebook)   # diagnose copies each fact
    with _GUARD:
        _DIAGNOSES[key] = result
        _FACTS[facts_key] = (count, last, facts)
        _FACTS.move_to_end(facts_key)
        while len(_DIAGNOSES) > _CACHE_SIZE:
            _DIAGNOSES.popitem(last=False)
        while len(_FACTS) > _CACHE_SIZE:
            _FACTS.popitem(last=False)
    return result


def forget(store, session_id: str) -> None:
    """Facts were removed or re-attributed: nothing cached for the session holds."""
    with _GUARD:
        _FACTS.pop((store.path, session_id), None)
        for key in [k for k in _DIAGNOSES if k[0] == store.path and k[1] == session_id]:
            del _DIAGNOSES[key]
