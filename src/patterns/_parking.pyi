# Stub for the shared parking waiter (patterns._parking): a C-level base class only.
from typing_extensions import disjoint_base

@disjoint_base
class Parker: ...
