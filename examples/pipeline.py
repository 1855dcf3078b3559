"""Pipeline: parse -> enrich -> format, three stages joined by bounded Channels.

Backpressure keeps memory flat whatever the input size; ``ordered=True`` keeps the output in
input order although the enrich stage has several workers; an exception in any stage stops
every stage and is raised here.

    python examples/pipeline.py
"""

from __future__ import annotations

import sys
from typing import Iterator

from patterns import Pipeline


def lines(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"user{i % 7},{i},{i * 3 % 11}"


def parse(line: str) -> tuple[str, int, int]:
    user, order, amount = line.split(",")
    return user, int(order), int(amount)


def enrich(record: tuple[str, int, int]) -> tuple[str, int, int, str]:
    user, order, amount = record
    tier = "gold" if amount > 7 else "basic"
    return user, order, amount, tier


def render(record: tuple[str, int, int, str]) -> str:
    user, order, amount, tier = record
    return f"#{order:04d} {user:<6} {amount:>3} {tier}"


def main(count: int = 1000) -> int:
    pipeline = Pipeline().stage(parse).stage(enrich, workers=4, ordered=True).stage(render, capacity=16)
    with pipeline.run(lines(count)) as run:
        rendered = list(run)
    assert len(rendered) == count and rendered[0].startswith("#0000")
    assert [int(r[1:5]) for r in rendered] == list(range(count))  # input order kept
    print(rendered[-1])
    print(f"{count} records through {pipeline!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
