"""Tell ftsync's ``atomics`` from another distribution's package of the same import name.

The import names ``atomics`` and ``patterns`` are shared with other distributions (the
``atomics`` distribution is a different atomics library).  Installed over ftsync, another
``atomics`` replaces ``atomics/__init__.py``; every later import of ftsync's types would fail
deep inside ``patterns``.  Importing this module (``patterns/__init__`` does it first) runs
``require_ftsync_atomics()``, which says what happened and how to repair it.
"""

from __future__ import annotations

import importlib
import importlib.metadata

__all__ = ["foreign_atomics_problem", "require_ftsync_atomics"]


def foreign_atomics_problem() -> str | None:
    """Why the importable ``atomics`` is not ftsync's, or None when it is."""
    try:
        module = importlib.import_module("atomics")
    except ImportError:
        return None  # no atomics at all: the plain ImportError that follows says so
    native = getattr(module, "AtomicInt64", None)
    if native is not None and getattr(native, "__module__", "") == "atomics._native":
        return None
    where = getattr(module, "__file__", None) or "?"
    try:
        owners = importlib.metadata.packages_distributions().get("atomics", [])
    except Exception:  # metadata of some unrelated distribution is broken
        owners = []
    others = sorted({name for name in owners if name.lower() != "ftsync"})
    by = f"the {', '.join(repr(o) for o in others)} distribution" if others else "another distribution"
    return (
        f"the 'atomics' module imported from {where} is not ftsync's: {by} installs a package "
        "under the same import name 'atomics' and has replaced or shadowed ftsync's. "
        "ftsync's import names 'atomics' and 'patterns' cannot share an environment with it. "
        f"To repair: pip uninstall {' '.join(others) or '<that distribution>'} ftsync, then "
        "pip install ftsync (or use a separate virtual environment for the other package)."
    )


def require_ftsync_atomics() -> None:
    """Raise ImportError with the explanation when ``atomics`` is not ftsync's."""
    problem = foreign_atomics_problem()
    if problem is not None:
        raise ImportError(problem, name="atomics")


require_ftsync_atomics()
