"""Facts as dicts that share their field names with every fact of the same fields.

A folder of labs gives hundreds of thousands of facts, each a plain dict: in CPython a
dict holds, besides its values, its keys and their hashes in a table of its own (~840
bytes for the 28 fields of an iptables rule). The attributes of objects of one class
are kept otherwise (a *key-sharing dictionary*, PEP 412): their names once, in the
class, and per object only its values, 8 bytes each. An object's ``__dict__`` is such a
dict, and stays one when the object is gone; so ``compact`` gives back the same fields
as the ``__dict__`` of an object of a class made for that list of field names (~330
bytes for the iptables rule, ~180 instead of ~280 for a ten-field fact).

It is a dict like any other: it compares, copies, pickles and serialises as one, and
nothing in it depends on how its memory is laid out. A field added afterwards is taken
into the shared names while they are few (the fact's number, kb/facts.py); past
``_MOST_SHARED_FIELDS`` CPython gives the dict a table of its own again (same content,
more memory), so a fact is only made compact when it has room for its number.
"""
from __future__ import annotations

# CPython shares at most 30 names per class, and a dict whose names reach that many is
# converted at twice an ordinary dict's size: one name is left for the fact's number.
_MOST_SHARED_FIELDS = 28
# field names -> the class whose objects hold them; bounded like a shape cache
_CLASSES: dict[tuple, type | None] = {}
_MAX_CLASSES = 1024


def compact(fields: dict) -> dict:
    """``fields`` as a key-sharing dict (equal to it), or ``fields`` itself when its
    names cannot be shared (too many, or not names an attribute can have)."""
    names = tuple(fields)
    holder = _CLASSES.get(names, ...)
    if holder is ...:
        holder = _holder_of(names)
    if holder is None:
        return fields
    instance = holder()
    for name, value in fields.items():
        setattr(instance, name, value)
    return instance.__dict__


def _holder_of(names: tuple) -> type | None:
    if len(_CLASSES) >= _MAX_CLASSES:
        _CLASSES.clear()
    shareable = len(names) <= _MOST_SHARED_FIELDS and all(
        type(name) is str and name.isidentifier() and not name.startswith("__") for name in names)
    # a class per list of names: one holding facts of different fields would collect the
    # names of all of them and soon have too many to share
    # (a Python keyword, as an iptables rule's ``in``, is an attribute name for setattr)
    holder = type("Fields", (), {}) if shareable else None
    _CLASSES[names] = holder
    return holder
