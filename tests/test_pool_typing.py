"""WorkerPool.submit and patterns.Future are generic for type checkers, as ThreadPoolExecutor's are."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # a mypy run over the package: seconds to tens of seconds

PROGRAM = textwrap.dedent('''
    import concurrent.futures as cf
    from patterns import Future, WorkerPool

    def square(x: int) -> int:
        return x * x

    with WorkerPool(2) as pool:
        typed: Future[int] = pool.submit(square, 3)
        reveal_type(pool.submit(square, 3))
        reveal_type(pool.submit(square, 3).result())
        as_std: cf.Future[int] = pool.submit(square, 3)
        wrong: Future[str] = pool.submit(square, 3)
        pool.submit(square, "three")
''')


def test_submit_returns_a_generic_future_that_mypy_checks(tmp_path):
    path = tmp_path / "use_pool.py"
    path.write_text(PROGRAM)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         str(path)], capture_output=True, text=True, timeout=600,
    )
    lines = run.stdout.splitlines()
    notes = [line.split(": note: ", 1)[1] for line in lines if ": note: Revealed type" in line]
    errors = [line.split(": error: ", 1)[1] for line in lines if ": error: " in line]
    assert notes == ['Revealed type is "patterns._future.Future[builtins.int]"',
                     'Revealed type is "builtins.int"'], run.stdout
    # exactly the two wrong lines are rejected: Future[int] is not Future[str], "three" is not int
    assert len(errors) == 2, run.stdout
    assert 'has incompatible type "Callable[[int], int]"; expected "Callable[[int], str]"' in errors[0], run.stdout
    assert 'Argument 2 to "submit" of "WorkerPool" has incompatible type "str"' in errors[1], run.stdout
