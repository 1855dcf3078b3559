"""In-tree PEP 517 backend: setuptools, plus cffi where cffi supports the interpreter.

No PEP 508 marker tells a free-threaded interpreter apart, so ``pyproject.toml`` cannot say
"cffi, except on free-threaded 3.13".  This backend adds cffi to the build requirements
itself; setup.py uses the same rule for the runtime requirements.
"""
