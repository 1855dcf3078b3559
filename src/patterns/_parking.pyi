# Stub for the shared parking waiter (patterns._parking): a C-level base class, the wait queue
# the compiled Channel and Semaphore share (C-level only), and the park outcomes (WAITING,
# TIMED_OUT, CANCELED) for the Python reference Channel under tests/
from typing import final

from typing_extensions import disjoint_base

OUTCOMES: tuple[int, int, int]

@disjoint_base
class Parker: ...

@final
class WaitEntry: ...

@final
class WaitQueue: ...
