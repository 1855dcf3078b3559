"""``ftsync``: the command line.  ``ftsync bench`` is the main job (also ``python -m patterns bench``).

``ftsync bench`` runs the headline comparisons on the interpreter it is started with:
counters (AtomicInt64, AtomicCounter, Lock + int, ft_utils and cereggii where installed),
the token bucket (against a locked plain-Python bucket and ``limits`` where installed),
WorkerPool against ThreadPoolExecutor, and Channel against queue.Queue, at 1..N threads.
It prints a table with ratios to the stdlib baseline of each comparison; ``--json`` prints
the same as JSON; ``--plot out.png`` draws a scaling chart (needs matplotlib: the ``plot``
extra).  No server is needed.  Exit status: see ``EXIT_STATUS`` (also in ``ftsync bench --help``).
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

#: Exit statuses of ``ftsync bench``.
EXIT_OK = 0  # every result was exact
EXIT_NOT_EXACT = 1  # a contender lost updates or refused work (marked "!" in the table)
EXIT_USAGE = 2  # a bad option, refused before anything runs
EXIT_FAILED = 3  # a measurement or the chart failed; what was measured is still printed
EXIT_INTERRUPTED = 130  # Ctrl-C; what was measured so far is still printed

EXIT_STATUS = f"""\
exit status:
  {EXIT_OK}    every result was exact
  {EXIT_NOT_EXACT}    a result was not exact (lost updates or refusals, marked "!")
  {EXIT_USAGE}    bad options (checked before anything runs, --plot included)
  {EXIT_FAILED}    a measurement or the chart failed (the results so far are still printed)
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C (the results so far are still printed)
"""


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
    bench = commands.add_parser("bench", help="compare ftsync with the stdlib and installed peers at 1..N threads",
                                description="Compare ftsync with the stdlib and installed peers at 1..N threads.",
                                epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--threads", type=_thread_counts, default=_default_threads(),
                       help="thread counts, comma-separated (default: powers of two up to the CPU count)")
    bench.add_argument("--only", default=",".join(COMPARISONS),
                       help=f"comparisons to run, comma-separated, from: {', '.join(COMPARISONS)}")
    bench.add_argument("--rounds", type=int, default=3, help="rounds per measurement; the best is kept (default 3)")
    bench.add_argument("--quick", action="store_true", help="a tenth of the work per round (a smoke run)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of the table")
    bench.add_argument("--plot", metavar="FILE",
                       help="also draw a scaling chart to this file, its format from the extension "
                            "(.png, .svg, .pdf, ...; needs matplotlib)")
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


def _plot_problem(path: str) -> str | None:
    """Why ``--plot path`` cannot work, or None: checked before anything is measured."""
    try:
        import matplotlib
    except ImportError:
        return "--plot needs matplotlib: pip install 'ftsync[plot]'"
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extension not in formats:
        return (f"--plot: cannot tell the chart format from {path!r}; end the name in one of "
                + ", ".join("." + f for f in sorted(formats)))
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):  # append: an existing file is not truncated by the check
            pass
    except OSError as exc:
        return f"--plot: cannot write {path!r}: {exc.strerror or exc}"
    if not existed:
        os.remove(path)
    return None


def _plot(rows: list[Any], env: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    from ._bench import COMPARISONS_BY_NAME

    names = list(dict.fromkeys(r.comparison for r in rows))
    threads = sorted({r.threads for r in rows})
    columns = min(len(names), 2)
    grid_rows = -(-len(names) // columns)
    fig = Figure(figsize=(6 * columns, 4.2 * grid_rows + 0.4))
    axes = fig.subplots(grid_rows, columns, squeeze=False).flatten()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        for label in dict.fromkeys(r.contender for r in rows if r.comparison == name):
            mine = sorted((r for r in rows if r.comparison == name and r.contender == label), key=lambda r: r.threads)
            ax.plot([r.threads for r in mine], [r.per_second / 1e6 for r in mine], marker="o",
                    linewidth=2.5 if mine[0].ours else 1.2, linestyle="-" if mine[0].ours else "--",
                    label=label + (" *" if mine[0].ours else ""))
        ax.set_title(name, fontsize=9)
        # Thread counts double: a log2 axis spaces 1, 2, 4, 8 evenly, labelled with the counts run.
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(threads))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        if len(threads) == 1:
            ax.set_xlim(threads[0] / 1.5, threads[0] * 1.5)
        ax.set_xlabel("threads (log2 scale)")
        # Rates from zero, so the gap between two lines reads as their real ratio.
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.05)
        ax.set_ylabel(f"million {COMPARISONS_BY_NAME[name].unit}/s (axis from 0)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    build = "free-threaded" if env["free_threaded_build"] else "GIL build"
    gil = "GIL enabled" if env["gil_enabled"] else "GIL disabled"
    fig.suptitle(f"ftsync bench: CPython {env['python']} ({build}, {gil}), {env['cpu_count']} CPUs; "
                 "* = ftsync, higher is better")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _usage_error(message: str) -> int:
    sys.stderr.write(f"ftsync bench: error: {message}\n")
    return EXIT_USAGE


def bench(args: argparse.Namespace) -> int:
    from ._bench import COMPARISONS, add_ratios, run_comparisons

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if not names:
        return _usage_error(f"--only must name at least one comparison, from: {', '.join(COMPARISONS)}")
    unknown = [n for n in names if n not in COMPARISONS]
    if unknown:
        return _usage_error(f"--only: unknown comparison {unknown[0]!r}; choose from {', '.join(COMPARISONS)}")
    if args.rounds < 1:
        return _usage_error(f"--rounds must be >= 1, got {args.rounds}")
    if args.plot:
        problem = _plot_problem(args.plot)
        if problem:
            return _usage_error(problem)
    interactive = sys.stderr.isatty()

    def progress(line: str) -> None:
        if interactive:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    env = _environment()
    rows: list[Any] = []
    missing: list[str] = []
    status = EXIT_OK
    failure = None
    try:
        run_comparisons(names, args.threads, rounds=args.rounds, quick=args.quick, progress=progress,
                        rows=rows, missing=missing)
    except KeyboardInterrupt:
        status, failure = EXIT_INTERRUPTED, "interrupted"
    except Exception as exc:  # a peer library failing must not throw away the other results
        status, failure = EXIT_FAILED, f"the run failed: {type(exc).__name__}: {exc}"
    if interactive:
        sys.stderr.write("\r\033[K")
    add_ratios(rows)
    if args.json:
        report: dict[str, Any] = {"environment": env, "results": [r.as_dict() for r in rows],
                                  "not_installed": missing}
        if failure:
            report["incomplete"] = failure
        print(json.dumps(report, indent=2))
    else:
        print(_table(rows, missing, env))
    sys.stdout.flush()
    if failure:
        sys.stderr.write(f"ftsync bench: {failure}; printed the {len(rows)} measurement(s) made so far\n")
    if args.plot and rows:
        try:
            _plot(rows, env, args.plot)
        except Exception as exc:
            sys.stderr.write(f"ftsync bench: could not draw the chart to {args.plot!r}: {type(exc).__name__}: {exc}\n")
            return status or EXIT_FAILED
        if not args.json:
            print(f"chart: {args.plot}")
    if status:
        return status
    return EXIT_OK if all(r.exact for r in rows) else EXIT_NOT_EXACT


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ftsync`` command: parse ``argv`` (default: the process's) and run it; the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "bench":
        return bench(args)
    raise AssertionError(args.command)  # argparse requires a known command


if __name__ == "__main__":
    sys.exit(main())
