"""Every public name, walked through each public module's ``__all__``: where it says it lives."""

import importlib
import pickle

import pytest

# Every public module (tests/typing/api_usage.py and docs/api/ cover the same list).
PUBLIC_MODULES = [
    "atomics", "atomics.views",
    "patterns", "patterns.channel", "patterns.context", "patterns.group", "patterns.lockorder",
    "patterns.pipeline", "patterns.pool", "patterns.semaphore", "patterns.shutdown",
    "patterns.ratelimit", "patterns.ratelimit.redis", "patterns.ratelimit.aio",
    "patterns.ratelimit.decorator", "patterns.ratelimit.keyed",
    "patterns.dlock", "patterns.dlock.aio", "patterns.dlock.etcd", "patterns.dlock.fencing",
    "patterns.dlock.memory", "patterns.dlock.redis", "patterns.dlock.redlock", "patterns.dlock.url",
    "patterns.dlock.aio.etcd", "patterns.dlock.aio.memory", "patterns.dlock.aio.redis",
    "patterns.dlock.aio.redlock", "patterns.dlock.aio.url",
]


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # atomics.views on free-threaded 3.13 (no cffi there)
        assert name == "atomics.views" and "cffi" in str(exc), exc
        return None


def _is_public(path):
    return not any(part.startswith("_") for part in path.split("."))


def public_homes():
    """{public object: its one documented path}: the module that defines it when that module
    is public, else the most specific public module exporting it (``patterns.dlock.LockError``)."""
    exporters = {}
    for name in PUBLIC_MODULES:
        module = _import(name)
        for attr in getattr(module, "__all__", ()):
            if attr.startswith("__"):
                continue  # __version__
            obj = getattr(module, attr)
            exporters.setdefault(id(obj), (obj, attr, []))[2].append(name)
    homes = {}
    for obj, attr, modules in exporters.values():
        defined = getattr(obj, "__module__", None)
        if isinstance(obj, type) or callable(obj):
            home = defined if defined in modules and _is_public(defined) else max(modules, key=len)
        else:  # a constant or an instance (INF, default_checker): where it is exported
            home = max(modules, key=len)
        homes[f"{home}.{attr}"] = modules
    return homes


def public_exceptions():
    found = {}
    for name in PUBLIC_MODULES:
        module = _import(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                found.setdefault(obj, name)
    return found


def test_every_public_module_has_all():
    for name in PUBLIC_MODULES:
        module = _import(name)
        if module is not None:
            assert isinstance(getattr(module, "__all__", None), list), name


@pytest.mark.parametrize("exc", sorted(public_exceptions(), key=lambda e: e.__qualname__),
                         ids=lambda e: e.__qualname__)
def test_public_exceptions_name_their_public_module(exc):
    parts = exc.__module__.split(".")
    assert not any(part.startswith("_") for part in parts), f"{exc.__qualname__} says {exc.__module__}"
    assert getattr(importlib.import_module(exc.__module__), exc.__qualname__) is exc
    assert pickle.loads(pickle.dumps(exc)) is exc  # pickle finds the class by that path


def _sample(exc):
    """An instance as ftsync raises it: the constructor's own arguments where it has some."""
    import signal

    from patterns.lockorder import CallSite, LockOrderEdge

    site = CallSite("/srv/bank.py", 3, "transfer")
    samples = {
        "SignalReceived": lambda: exc(signal.SIGTERM),
        "RateLimited": lambda: exc(0.25),
        "LockOrderViolation": lambda: exc("a", "b", site, (LockOrderEdge("a", "b", site),)),
    }
    return samples.get(exc.__name__, lambda: exc("boom"))()


@pytest.mark.parametrize("exc", sorted(public_exceptions(), key=lambda e: e.__qualname__),
                         ids=lambda e: e.__qualname__)
def test_public_exceptions_survive_pickling_with_their_attributes(exc):
    # errors cross process pools and multiprocessing queues pickled; the default reduce
    # passes the message back as the first constructor argument, which breaks custom ones
    error = _sample(exc)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc and str(copy) == str(error) and copy.args == error.args
    assert vars(copy) == vars(error)


def test_channel_closed_traceback_shows_the_public_path():
    import traceback

    from patterns import Channel, ChannelClosed

    ch = Channel(1)
    ch.close()
    with pytest.raises(ChannelClosed) as info:
        ch.send(1)
    text = "".join(traceback.format_exception_only(info.type, info.value))
    assert text.startswith("patterns.channel.ChannelClosed") and "_channel_base" not in text
