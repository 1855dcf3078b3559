"""What checking a context costs in a hot loop (target: ``ctx.err()`` under 100 ns).

Each round is 1000 calls (see _timing.py): a round's time in microseconds is ns per call.
"""

import pytest

from _timing import make_loop
from patterns import background, with_cancel, with_timeout, with_value

GROUP = "context check (1 thread)"


def _contexts():
    root, _ = with_cancel(background())
    timed, _ = with_timeout(root, 3600)
    return {
        "ctx.err(), with_cancel": with_cancel(background())[0],
        "ctx.err(), with_timeout child": timed,
        "ctx.err(), with_value over with_timeout": with_value(timed, "k", 1),
        "ctx.done().is_set(), with_cancel": None,
    }


@pytest.mark.parametrize("label", list(_contexts()))
def test_context_check(benchmark, label):
    ctx = _contexts()[label] or with_cancel(background())[0]
    stmt = "ctx.done().is_set()" if "done" in label else "ctx.err()"
    benchmark.group = GROUP
    benchmark.name = f"ftsync: {label}"
    loop = make_loop(stmt, {"ctx": ctx})
    benchmark(loop)
    benchmark.extra_info["ns_per_call_min"] = round(benchmark.stats.stats.min * 1e9 / 1000, 1)
