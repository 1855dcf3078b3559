# Builds the control extension the way ftsync's own are built: setuptools with the
# interpreter's sysconfig flags (which carry -fsanitize=thread on a TSan build).
from setuptools import Extension, setup

setup(name="ftsync-racy", ext_modules=[Extension("ftsync_racy", ["racy.c"])])
