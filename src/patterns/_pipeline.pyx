# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""The compiled loops of Pipeline: a feeder and a stage's worker, one call per item.

Compiled only to take the interpreter's per-item overhead off the hot loop; the channels,
the context and the error handling they call are the public ones.
"""


def feed_loop(items, send, ctx):
    """A pipeline's feeder: ``send(item)`` for every item of the iterator ``items``."""
    for item in items:
        send(item, None, ctx)


def stage_loop(fn, recv, send, ctx, closed):
    """A pipeline stage's worker: ``send(fn(item))`` for every item ``recv`` gives, until closed.

    ``recv``/``send`` are a Channel's bound methods, called with ``ctx`` so that cancelling
    the pipeline ends a blocked call; ``closed`` is the ChannelClosed class.
    """
    while True:
        try:
            item = recv(None, ctx)
        except closed:
            return
        send(fn(item), None, ctx)
