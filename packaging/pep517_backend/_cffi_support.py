"""Whether cffi can be built and imported on the running interpreter."""

import sys
import sysconfig

#: The cffi release line that supports free-threaded CPython (3.14t and later).
CFFI_REQUIREMENT = "cffi>=2.0"


def cffi_supported() -> bool:
    """False on free-threaded CPython before 3.14: cffi 2.x refuses to install there."""
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return not (free_threaded and sys.version_info < (3, 14))

