"""Comparing desired and live objects: the no-change test.

The no-change test is what makes a re-apply fast: an object whose every desired field
already has the desired value live (desired is a subset of live), and which the last
revision applied exactly so, needs no PATCH. Anything else is sent to server-side apply,
so a wrong "changed" verdict only costs a request, never correctness.
"""

from __future__ import annotations

import base64
import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

# Fields of a live object the server owns: never desired, never part of a plan.
_SERVER_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                "selfLink")


def comparable(desired: dict[str, Any]) -> dict[str, Any]:
    """The desired object as the server would store it, for the subset test: without
    `status` (a subresource apply ignores), with a Secret's stringData folded into data."""
    obj = {k: v for k, v in desired.items() if k != "status"}
    meta = dict(obj.get("metadata") or {})
    meta.pop("creationTimestamp", None)
    obj["metadata"] = meta
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1" and obj.get("stringData"):
        data = dict(obj.get("data") or {})
        for k, v in (obj.get("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj = {k: v for k, v in obj.items() if k != "stringData"}
        obj["data"] = data
    return obj


_SUFFIX = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
           "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
           "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
           "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
           "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")
_QUANTITY_KEYS = {"cpu", "memory", "storage", "ephemeral-storage", "pods"}


def _quantity(value: Any) -> Decimal | None:
    m = _QUANTITY.match(str(value))
    if m is None:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation:
        return None


def _is_quantity_key(key: str) -> bool:
    return key in _QUANTITY_KEYS or key.startswith("hugepages-") or "/" in key


def _zero(value: Any) -> bool:
    """Values the API server drops when it stores an object (Go's omitempty)."""
    return value in ("", False, 0, [], {}) and not (isinstance(value, bool) and value)


def _scalar_equal(want: Any, have: Any, key: str = "") -> bool:
    if key and _is_quantity_key(key) and want != have:
        # The server stores quantities canonically: 2000m is 2, 1024Mi is 1Gi.
        a, b = _quantity(want), _quantity(have)
        if a is not None and a == b:
            return True
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, int | float) and isinstance(have, str):
        return str(want) == have  # e.g. cpu: 1 is stored as "1"
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return False


def covers(live: Any, want: Any, key: str = "") -> bool:
    """True when every field of `want` has the same value in `live`."""
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return live is None and not want
        for k, v in want.items():
            if v is None:
                if live.get(k) not in (None, {}, []):
                    return False
                continue
            if k not in live:
                if _zero(v):
                    continue
                return False
            if not covers(live[k], v, str(k)):
                return False
        return True
    if isinstance(want, list):
        if live is None and not want:
            return True
        if not isinstance(live, list) or len(live) != len(want):
            return False
        return all(covers(lv, wv, key) for lv, wv in zip(live, want, strict=True))
    return _scalar_equal(want, live, key)


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for k in _SERVER_META:
        meta.pop(k, None)
    return out
