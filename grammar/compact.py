"""Facts as dicts that share their field names with every fact of the same fields.

A folder of labs gives hundreds of thousands of facts, each a plain dict: in CPython a
dict holds, besides its values, its keys and their hashes in a table of its own (~470
bytes for the 17 fields of a captured packet, ~280 for ten fields). The attributes of
objects of one class are kept otherwise (a *key-sharing dictionary*, PEP 412): their
names once, in the class, and per object only its values, 8 bytes each. An object's
``__dict__`` is such a dict, and stays one when the object is gone; so ``compact`` gives
back the same fields as the ``__dict__`` of an object of a class made for that list of
field names (~240 bytes for the packet, ~175 for ten fields).

It is a dict like any other: it compares, copies, pickles and serialises as one, and
nothing in it depends on how its memory is laid out. A field added afterwards is taken
into the shared names while they are few (the fact's number, kb/facts.py); past
``_MOST_SHARED_FIELDS`` CPython gives the dict a table of its own again (same content,
more memory), so a fact is only made compact when it has room for its number.
"""
from __future__ import annotations

import functools
import keyword
from sys import intern

# CPython 3.11 shares fewer than 30 names per class (SHARED_KEYS_MAX_SIZE), and a dict
# that reaches that many is converted at twice an ordinary dict's size (29 fields and
# the fact's number: 1.6 KB instead of 0.84): one name is left for the fact's number.
# An iptables rule (26 fields, its node and provenance) just fits.
_MOST_SHARED_FIELDS = 28
# field names -> what makes a compact dict of them (None: they cannot be shared);
# bounded like a shape cache
_MAKERS: dict[tuple, object] = {}
_MAX_MAKERS = 1024
# A maker is compiled code (exec of its source, ~0.4 ms): a list of names is given one
# at its COMPILE_AT-th sighting, as the shape cache compiles its templates. A small
# transcript, whose kinds come a few times each, is not worth the compiling; its few
# facts stay ordinary dicts.
COMPILE_AT = 8
_SIGHTINGS: dict[tuple, int] = {}


def _sighted(key: tuple) -> bool:
    """Whether ``key`` has now been seen often enough to be given compiled code."""
    seen = _SIGHTINGS.get(key, 0) + 1
    if seen < COMPILE_AT:
        if len(_SIGHTINGS) >= 4 * _MAX_MAKERS:
            _SIGHTINGS.clear()
        _SIGHTINGS[key] = seen
        return False
    _SIGHTINGS.pop(key, None)
    return True


def compact(fields: dict) -> dict:
    """``fields`` as a key-sharing dict (equal to it), or ``fields`` itself when its
    names cannot be shared (too many, or not names an attribute can have) or have not
    come often enough yet to be worth it."""
    names = tuple(fields)
    make = _MAKERS.get(names, ...)
    if make is ...:
        if not _sighted(names):
            return fields
        make = _maker(names)
    return fields if make is None else make(fields)


def _maker(names: tuple):
    """A function of the fields' dict giving its key-sharing copy: the attributes set by
    name in compiled code, as a dataclass' __init__ does (a loop of ``setattr`` would
    cost reading a folder of labs a tenth more)."""
    if len(_MAKERS) >= _MAX_MAKERS:
        _MAKERS.clear()
    if not names or len(names) > _MOST_SHARED_FIELDS or not all(
            type(name) is str and name.isidentifier() and not name.startswith("__") for name in names):
        _MAKERS[names] = None
        return None
    # a class per list of names: one holding facts of different fields would collect the
    # names of all of them and soon have too many to share
    holder = type("Fields", (), {})
    values = [f"_{number}" for number in range(len(names))]
    lines = [f"def make(fields):",
             f"    {', '.join(values)}{',' if len(values) == 1 else ''} = fields.values()",
             f"    held = Holder()"]
    for name, value in zip(names, values):
        # a Python keyword (an iptables rule's ``in``) is an attribute only for setattr
        lines.append(f"    setattr(held, {name!r}, {value})" if keyword.iskeyword(name)
                     else f"    held.{name} = {value}")
    lines.append("    return held.__dict__")
    namespace = {"Holder": holder}
    exec("\n".join(lines), namespace)
    _MAKERS[names] = make = namespace["make"]
    return make


def can_share(count: int) -> bool:
    """Whether a dict of ``count`` fields, the fact's number not counted, can be compact:
    a record that cannot is better handed over as it is than copied at the same size."""
    return count <= _MOST_SHARED_FIELDS


def values_maker(names: tuple):
    """``make(*values)``: the key-sharing dict of ``names`` (attribute names, at most
    ``_MOST_SHARED_FIELDS``) with ``values``, without a dict of them made first (a
    fact's provenance, one per fact)."""
    assert can_share(len(names)) and all(name.isidentifier() and not keyword.iskeyword(name)
                                         for name in names)
    lines = [f"def make({', '.join(names)}):", "    held = Holder()"]
    lines += [f"    held.{name} = {name}" for name in names]
    lines.append("    return held.__dict__")
    namespace = {"Holder": type("Fields", (), {})}
    exec("\n".join(lines), namespace)
    return namespace["make"]


_RECORD_MAKERS: dict[tuple, object] = {}


def _plain_record(left_out: frozenset, then: tuple, interned: bool, record: dict, *values) -> dict:
    """What a compiled maker gives, as an ordinary dict (for records of names not yet
    seen often enough to compile one)."""
    fields = {name: intern(value) if interned and value.__class__ is str else value
              for name, value in record.items() if name not in left_out}
    fields.update(zip(then, values))
    return fields


def record_maker(names: tuple, left_out: frozenset, then: tuple, interned: bool = False):
    """``(make, compiled)``: ``make(record, *values)`` gives the dict of a record's
    fields (``names``, in order) but those ``left_out``, then the fields ``then`` with
    ``values``; compact where its names can be shared, else a dict made at its size.
    What reading gives each record of one kind, in one compiled step instead of a dict
    made twice. Until the names have come ``COMPILE_AT`` times, ``make`` is a stand-in
    giving the same dicts, uncompiled and ordinary (``compiled`` False: ask again for
    a later record). With ``interned``, its texts are interned: a command run again
    prints much of what it printed before, and the two outputs' facts then hold each
    text once (interning every value of every output would cost reading a 20,000-rule
    listing a twentieth more for a few MB per 10 MB)."""
    key = (names, left_out, then, interned)
    make = _RECORD_MAKERS.get(key)
    if make is not None:
        return make, True
    if not _sighted(key):
        return functools.partial(_plain_record, left_out, then, interned), False
    if len(_RECORD_MAKERS) >= _MAX_MAKERS:
        _RECORD_MAKERS.clear()
    values = [f"_{number}" for number in range(len(names))]
    given = [f"_given{number}" for number in range(len(then))]
    fields = [(name, f"intern({value}) if {value}.__class__ is str else {value}" if interned else value)
              for name, value in zip(names, values) if name not in left_out] + list(zip(then, given))
    lines = [f"def make(record, {', '.join(given)}):" if given else "def make(record):"]
    if values:
        lines.append(f"    {', '.join(values)}{',' if len(values) == 1 else ''} = record.values()")
    if _maker(tuple(dict.fromkeys(name for name, _ in fields))) is None:
        lines.append("    return {" + ", ".join(f"{name!r}: {value}" for name, value in fields) + "}")
    else:
        lines.append("    held = Holder()")
        for name, value in fields:
            lines.append(f"    setattr(held, {name!r}, {value})" if keyword.iskeyword(name)
                         else f"    held.{name} = {value}")
        lines.append("    return held.__dict__")
    namespace = {"Holder": type("Fields", (), {}), "intern": intern}
    exec("\n".join(lines), namespace)
    _RECORD_MAKERS[key] = make = namespace["make"]
    return make, True
