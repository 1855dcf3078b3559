"""What a type checker sees of the public API: real types for every name, wrong calls rejected.

One ``mypy --strict`` run checks three files: tests/typing/api_usage.py (typed use of the API,
which must pass), a generated file revealing the type of every public name (none may be Any:
a lazy ``__getattr__`` without TYPE_CHECKING imports shows up here), and calls with wrong
argument types, each of which must be an error on its own line.
"""

import re
import sys
from pathlib import Path

import pytest

from test_public_names import PUBLIC_MODULES, _import

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

# (call, what mypy must say about it): each line must be rejected.
REJECTED = [
    ('patterns.dlock.lock_from_url("memory://", "x", ttl="ten")', 'incompatible type "str"; expected "float"'),
    ('patterns.dlock.aio.lock_from_url("memory://", "x", ttl="ten")', 'incompatible type "str"; expected "float"'),
    ('patterns.dlock.RedisLock(client=None, name=1, ttl=1.0)', 'incompatible type "int"; expected "str"'),
    ('atomics.AtomicInt64("5")', 'incompatible type "str"'),
    ('patterns.WorkerPool("4")', 'incompatible type "str"'),
]


def _reveal_lines():
    lines = [f"import {name}" for name in PUBLIC_MODULES]
    revealed = []
    for name in PUBLIC_MODULES:
        module = _import(name)
        if module is None:
            continue
        for attr in module.__all__:
            revealed.append(f"{name}.{attr}")
            lines.append(f"reveal_type({name}.{attr})")
    return lines, revealed


def test_mypy_strict_sees_real_types_and_rejects_wrong_ones(tmp_path):
    reveal_lines, revealed = _reveal_lines()
    (tmp_path / "reveal_public.py").write_text("\n".join(reveal_lines) + "\n")
    rejected = ["import atomics", "import patterns", "import patterns.dlock", "import patterns.dlock.aio"]
    first_bad = len(rejected) + 1
    rejected += [call for call, _ in REJECTED]
    (tmp_path / "rejected_calls.py").write_text("\n".join(rejected) + "\n")
    usage = Path(__file__).parent / "typing" / "api_usage.py"
    out, err, _ = mypy_api.run(["--strict", "--no-incremental", "--python-version",
                                f"{sys.version_info.major}.{sys.version_info.minor}",
                                "--cache-dir", str(tmp_path / "cache"),
                                str(usage), str(tmp_path / "reveal_public.py"), str(tmp_path / "rejected_calls.py")])
    assert not err, err
    lines = out.splitlines()

    usage_errors = [line for line in lines if line.startswith(str(usage)) and ": error:" in line]
    assert not usage_errors, "\n".join(usage_errors)

    types = [m.group(1) for line in lines if "reveal_public.py" in line
             for m in [re.search(r'Revealed type is "(.*)"$', line)] if m]
    assert len(types) == len(revealed), out
    anys = [name for name, t in zip(revealed, types) if t == "Any"]
    assert not anys, f"checkers see these public names as Any: {anys}"
    assert not [line for line in lines if "reveal_public.py" in line and ": error:" in line], out

    for number, (call, message) in enumerate(REJECTED, start=first_bad):
        errors = [line for line in lines if re.search(rf"rejected_calls\.py:{number}: error:", line)]
        assert errors, f"mypy accepted {call}\n{out}"
        assert any(message in line for line in errors), (call, errors)
