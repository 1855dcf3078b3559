"""Whether cffi can be built and imported on the running interpreter."""

import sys
import sysconfig

#: The cffi release line that supports free-threaded CPython (3.14t and later).
CFFI_REQUIREMENT = "cffi>=2.0"


def cffi_supported() -> bool:
    """False on free-threaded CPython before 3.14: cffi 2.x refuses to install there."""
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return not (free_threaded and sys.version_info < (3, 14))


def cffi_unsupported_reason() -> str:
    """Why cffi (and so ``atomics.views``) is missing on this interpreter, for error messages."""
    return (
        f"cffi does not support free-threaded Python {sys.version_info.major}."
        f"{sys.version_info.minor} (cffi 2.x supports free threading from 3.14t)"
    )
