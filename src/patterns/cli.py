"""``ftsync``: the command line.  ``ftsync bench`` is the main job (also ``python -m patterns bench``).

``ftsync bench`` runs the headline comparisons on the interpreter it is started with:
counters (AtomicInt64, AtomicCounter, Lock + int, ft_utils and cereggii where installed),
the token bucket (against a locked plain-Python bucket and ``limits`` where installed),
WorkerPool against ThreadPoolExecutor, and Channel against queue.Queue, at 1..N threads.
It prints a table with ratios to the stdlib baseline of each comparison; ``--json`` prints
the same as JSON; ``--plot out.png`` draws a scaling chart (needs matplotlib: the ``plot``
extra).  No server is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import sysconfig
from typing import Any, Sequence

__all__ = ["main"]


def _thread_counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads takes numbers like 1,2,4, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"--threads must be positive numbers, got {text!r}")
    return counts


def _default_threads() -> str:
    cpus = os.cpu_count() or 1
    counts, n = [], 1
    while n <= cpus:
        counts.append(n)
        n *= 2
    if counts[-1] != cpus:
        counts.append(cpus)
    return ",".join(map(str, counts))


def _parser() -> argparse.ArgumentParser:
    from ._bench import COMPARISONS

    parser = argparse.ArgumentParser(prog="ftsync", description="ftsync: Go's concurrency toolbox for free-threaded Python")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="compare ftsync with the stdlib and installed peers at 1..N threads")
    bench.add_argument("--threads", type=_thread_counts, default=_default_threads(),
                       help="thread counts, comma-separated (default: powers of two up to the CPU count)")
    bench.add_argument("--only", default=",".join(COMPARISONS),
                       help=f"comparisons to run, comma-separated, from: {', '.join(COMPARISONS)}")
    bench.add_argument("--rounds", type=int, default=3, help="rounds per measurement; the best is kept (default 3)")
    bench.add_argument("--quick", action="store_true", help="a tenth of the work per round (a smoke run)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of the table")
    bench.add_argument("--plot", metavar="PNG", help="also draw a scaling chart to this file (needs matplotlib)")
    return parser


def _environment() -> dict[str, Any]:
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_enabled": gil,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def _table(rows: list[Any], missing: list[str], env: dict[str, Any]) -> str:
    from ._bench import COMPARISONS_BY_NAME

    build = "free-threaded" if env["free_threaded_build"] else "GIL build"
    lines = [f"ftsync bench: CPython {env['python']} {build}, GIL {'enabled' if env['gil_enabled'] else 'disabled'}, "
             f"{env['cpu_count']} CPUs, {env['machine']}"]
    threads = sorted({r.threads for r in rows})
    for name in dict.fromkeys(r.comparison for r in rows):
        comparison = COMPARISONS_BY_NAME[name]
        lines.append("")
        lines.append(f"{name}: million {comparison.unit}/s (ratio to {comparison.baseline})")
        header = f"  {'':44}" + "".join(f"{f'{t} thr':>18}" for t in threads)
        lines.append(header)
        for label in dict.fromkeys(r.contender for r in rows if r.comparison == name):
            cells = []
            for t in threads:
                row = next((r for r in rows if r.comparison == name and r.contender == label and r.threads == t), None)
                if row is None:
                    cells.append(f"{'-':>18}")
                    continue
                ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x)"
                flag = "" if row.exact else " !"
                cells.append(f"{row.per_second / 1e6:.3f}{ratio}{flag}".rjust(18))
            mark = "*" if any(r.ours for r in rows if r.contender == label) else " "
            lines.append(f"{mark} {label:<44}" + "".join(cells))
    lines.append("")
    lines.append("* = ftsync; ! = the result was not exact (lost updates or refusals)")
    if missing:
        lines.append("not installed, left out: " + "; ".join(missing))
    return "\n".join(lines)


def _plot(rows: list[Any], env: dict[str, Any], path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'ftsync[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._bench import COMPARISONS_BY_NAME

    names = list(dict.fromkeys(r.comparison for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for label in dict.fromkeys(r.contender for r in rows if r.comparison == name):
            mine = sorted((r for r in rows if r.comparison == name and r.contender == label), key=lambda r: r.threads)
            ax.plot([r.threads for r in mine], [r.per_second / 1e6 for r in mine], marker="o",
                    linewidth=2.5 if mine[0].ours else 1.2, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("threads")
        ax.set_ylabel(f"million {COMPARISONS_BY_NAME[name].unit}/s")
        ax.set_xticks(sorted({r.threads for r in rows}))
        ax.legend(fontsize=7)
    build = "free-threaded" if env["free_threaded_build"] else "GIL build"
    fig.suptitle(f"ftsync bench: CPython {env['python']} ({build}), {env['cpu_count']} CPUs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def bench(args: argparse.Namespace) -> int:
    from ._bench import COMPARISONS, run_comparisons

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPARISONS]
    if unknown:
        raise SystemExit(f"--only: unknown comparison {unknown[0]!r}; choose from {', '.join(COMPARISONS)}")
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    interactive = sys.stderr.isatty()

    def progress(line: str) -> None:
        if interactive:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    env = _environment()
    rows, missing = run_comparisons(names, args.threads, rounds=args.rounds, quick=args.quick, progress=progress)
    if interactive:
        sys.stderr.write("\r\033[K")
    if args.plot:
        _plot(rows, env, args.plot)
    if args.json:
        print(json.dumps({"environment": env, "results": [r.as_dict() for r in rows], "not_installed": missing},
                         indent=2))
    else:
        print(_table(rows, missing, env))
        if args.plot:
            print(f"chart: {args.plot}")
    return 0 if all(r.exact for r in rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ftsync`` command: parse ``argv`` (default: the process's) and run it; the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return bench(args)
    raise AssertionError(args.command)  # argparse requires a known command


if __name__ == "__main__":
    sys.exit(main())
