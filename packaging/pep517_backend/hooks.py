"""PEP 517 hooks: setuptools.build_meta with cffi added to the build requirements when supported."""

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (re-export every hook)

from ._cffi_support import CFFI_REQUIREMENT, cffi_supported


def _with_cffi(requires):
    return [*requires, CFFI_REQUIREMENT] if cffi_supported() else list(requires)


def get_requires_for_build_wheel(config_settings=None):
    return _with_cffi(_setuptools.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_sdist(config_settings=None):
    return _with_cffi(_setuptools.get_requires_for_build_sdist(config_settings))


def get_requires_for_build_editable(config_settings=None):
    return _with_cffi(_setuptools.get_requires_for_build_editable(config_settings))
