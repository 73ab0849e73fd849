"""Query and update documents, as far as the lab's clients use them.

Filters: field equality (dotted paths, arrays match an element), ``$eq $ne $gt $gte $lt $lte
$in $nin $exists``, ``$and $or $nor``. Updates: ``$set $unset $inc $setOnInsert`` or a
replacement document. Sorts on one or more fields; projections by inclusion or exclusion.
Anything else is refused with MongoDB's BadValue (2) rather than silently ignored.
"""

import copy
import datetime

from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from .errors import MongoError

_MISSING = object()
# BSON's comparison order between types (a subset): numbers < strings < documents < arrays <
# ObjectId < booleans < dates < timestamps
_TYPE_ORDER = [((int, float, Int64), 1), (str, 2), (dict, 3), (list, 4), (bytes, 5),
               (ObjectId, 7), (bool, 8), (datetime.datetime, 9), (Timestamp, 10)]


def _rank(value):
    if value is None or value is _MISSING:
        return 0
    if isinstance(value, bool):
        return 8
    for types, rank in _TYPE_ORDER:
        if isinstance(value, types):
            return rank
    return 11


def sort_key(value):
    rank = _rank(value)
    if rank in (0,):
        return (rank, 0)
    if rank == 3:
        return (rank, tuple(sorted(value.items())).__repr__())
    if rank == 4:
        return (rank, tuple(sort_key(v) for v in value))
    if rank == 10:
        return (rank, (value.time, value.inc))
    if rank == 7:
        return (rank, value.binary)
    return (rank, value)


def get_path(doc, path):
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.isdigit():
            idx = int(part)
            cur = cur[idx] if idx < len(cur) else _MISSING
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _cmp(a, b):
    ka, kb = sort_key(a), sort_key(b)
    if ka[0] != kb[0]:
        return None  # different types never compare (MongoDB: type bracketing)
    return (ka > kb) - (ka < kb)


def _candidates(value):
    if isinstance(value, list):
        return [value] + value
    return [value]


def _op_match(value, op, arg):
    if op == "$eq":
        return any(_cmp(v, arg) == 0 for v in _candidates(value)) or (
            arg is None and value is _MISSING)
    if op == "$ne":
        return not _op_match(value, "$eq", arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        for v in _candidates(value):
            c = _cmp(v, arg) if v is not _MISSING else None
            if c is None:
                continue
            if (op == "$gt" and c > 0) or (op == "$gte" and c >= 0) or \
                    (op == "$lt" and c < 0) or (op == "$lte" and c <= 0):
                return True
        return False
    if op == "$in":
        if not isinstance(arg, list):
            raise MongoError(2, "$in needs an array")
        return any(_op_match(value, "$eq", a) for a in arg)
    if op == "$nin":
        if not isinstance(arg, list):
            raise MongoError(2, "$nin needs an array")
        return not any(_op_match(value, "$eq", a) for a in arg)
    if op == "$exists":
        return (value is not _MISSING) == bool(arg)
    raise MongoError(2, "unknown operator: %s" % op)


def matches(doc, flt):
    for key, cond in (flt or {}).items():
        if key == "$and":
            if not all(matches(doc, f) for f in cond):
                return False
        elif key == "$or":
            if not any(matches(doc, f) for f in cond):
                return False
        elif key == "$nor":
            if any(matches(doc, f) for f in cond):
                return False
        elif key.startswith("$"):
            raise MongoError(2, "unknown top level operator: %s" % key)
        else:
            value = get_path(doc, key)
            if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
                if not all(_op_match(value, op, arg) for op, arg in cond.items()):
                    return False
            elif not _op_match(value, "$eq", cond):
                return False
    return True


def _set_path(doc, path, value):
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _unset_path(doc, path):
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        cur = cur.get(part)
        if not isinstance(cur, dict):
            return
    cur.pop(parts[-1], None)


def is_operator_update(update):
    return bool(update) and all(k.startswith("$") for k in update)


def apply_update(doc, update, inserting=False):
    """A new document: ``doc`` updated by ``update`` (operators or a replacement)."""
    if isinstance(update, list):
        raise MongoError(2, "pipeline updates are not supported by the lab's MongoDB")
    if not is_operator_update(update):
        if any(k.startswith("$") for k in update):
            raise MongoError(2, "the update mixes operators and fields")
        new = copy.deepcopy(update)
        if "_id" in doc:
            if "_id" in new and _cmp(new["_id"], doc["_id"]) != 0:
                raise MongoError(66, "After applying the update, the (immutable) field '_id' "
                                     "was found to have been altered to _id: %r" % (new["_id"],))
            new = dict({"_id": doc["_id"]}, **{k: v for k, v in new.items() if k != "_id"})
        return new
    new = copy.deepcopy(doc)
    for op, fields in update.items():
        if op == "$set" or (op == "$setOnInsert" and inserting):
            for path, value in fields.items():
                if path == "_id" and "_id" in doc and _cmp(value, doc["_id"]) != 0:
                    raise MongoError(66, "Performing an update on the path '_id' would modify "
                                         "the immutable field '_id'")
                _set_path(new, path, copy.deepcopy(value))
        elif op == "$setOnInsert":
            continue
        elif op == "$unset":
            for path in fields:
                _unset_path(new, path)
        elif op == "$inc":
            for path, amount in fields.items():
                cur = get_path(new, path)
                if cur is _MISSING:
                    cur = 0
                if not isinstance(cur, (int, float)) or isinstance(cur, bool):
                    raise MongoError(14, "Cannot apply $inc to a value of non-numeric type")
                _set_path(new, path, cur + amount)
        else:
            raise MongoError(9, "Unknown modifier: %s. Expected a valid update modifier or "
                                "pipeline-style update specified as an array" % op)
    return new


def upsert_base(flt):
    """The document an upsert starts from: the filter's equality fields."""
    base = {}
    for key, cond in (flt or {}).items():
        if key.startswith("$"):
            continue
        if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            if "$eq" in cond:
                _set_path(base, key, copy.deepcopy(cond["$eq"]))
            continue
        _set_path(base, key, copy.deepcopy(cond))
    return base


def sort_docs(docs, spec):
    for field, direction in reversed(list((spec or {}).items())):
        docs.sort(key=lambda d, f=field: sort_key(get_path(d, f)), reverse=direction < 0)
    return docs


def project(doc, projection):
    if not projection:
        return doc
    include = {k for k, v in projection.items() if v and k != "_id"}
    if include:
        out = {k: doc[k] for k in include if k in doc}
        if projection.get("_id", 1) and "_id" in doc:
            out = dict({"_id": doc["_id"]}, **out)
        return out
    return {k: v for k, v in doc.items() if projection.get(k, 1)}
