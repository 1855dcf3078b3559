"""patterns.ratelimit.aio: the asyncio Redis twins against a real redis-server."""

import asyncio
import time
import uuid

import pytest

redis = pytest.importorskip("redis")
import redis.asyncio as aredis  # noqa: E402

from patterns.context import Canceled, background, with_cancel  # noqa: E402
from patterns.ratelimit import RateLimited, rate_limited  # noqa: E402
from patterns.ratelimit.aio import (  # noqa: E402
    AsyncRedisFixedWindow,
    AsyncRedisSlidingWindowCounter,
    AsyncRedisSlidingWindowLog,
    AsyncRedisTokenBucket,
    RedisUnavailable,
)
from patterns.ratelimit.redis import RedisSlidingWindowLog  # noqa: E402

WINDOWS = [AsyncRedisSlidingWindowLog, AsyncRedisSlidingWindowCounter, AsyncRedisFixedWindow]


def fresh():
    return f"aio-{uuid.uuid4().hex[:12]}"


def run(redis_server, body):
    async def main():
        c = aredis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=5)
        try:
            return await body(c)
        finally:
            await c.aclose()

    return asyncio.run(main())


def test_bucket(redis_server):
    async def body(c):
        lim = AsyncRedisTokenBucket(c, fresh(), rate=10, burst=3)
        assert [await lim.allow() for _ in range(4)] == [True] * 3 + [False]
        assert await lim.allow(0) and not await lim.allow(4)
        r = await lim.reserve(1)
        assert r.ok and r.delay() == pytest.approx(0.1, abs=0.05)
        await r.cancel()
        assert await lim.tokens() == pytest.approx(0, abs=0.2)
        assert not (await lim.reserve(4)).ok
        started = time.monotonic()
        assert await lim.wait(1, timeout=1)
        assert time.monotonic() - started < 0.5
        with pytest.raises(TimeoutError):
            await AsyncRedisTokenBucket(c, lim.name, rate=10, burst=3).wait(3, timeout=0.01)
        with pytest.raises(ValueError, match=r"n must be <= burst \(3\)"):
            await lim.wait(4)
        assert 0 < await lim.retry_after() <= 0.2

    run(redis_server, body)


def test_bucket_wait_cancelled_by_ctx_gives_tokens_back(redis_server):
    async def body(c):
        lim = AsyncRedisTokenBucket(c, fresh(), rate=2, burst=1)
        assert await lim.allow()
        ctx, cancel = with_cancel(background())
        asyncio.get_running_loop().call_later(0.05, cancel)
        with pytest.raises(Canceled):
            await lim.wait(ctx=ctx)
        assert await lim.tokens() > -0.5
        task = asyncio.ensure_future(lim.wait())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        assert await lim.tokens() > -0.5

    run(redis_server, body)


def test_bucket_local_batch(redis_server):
    async def body(c):
        lim = AsyncRedisTokenBucket(c, fresh(), rate=1e-6, burst=30, local_batch=10)
        before = (await c.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
        assert sum([await lim.allow() for _ in range(40)]) == 30
        after = (await c.info("commandstats"))["cmdstat_evalsha"]["calls"]
        assert after - before <= 3 + 10  # 3 leases, then a round trip per refusal

    run(redis_server, body)


@pytest.mark.parametrize("kind", WINDOWS)
def test_windows(redis_server, kind):
    async def body(c):
        lim = kind(c, fresh(), 3, 0.2)
        sec, usec = await c.time()  # start just after a window boundary of the server's clock
        now = sec + usec / 1e6
        await asyncio.sleep((int(now / 0.2) + 1) * 0.2 - now + 0.005)
        assert await lim.remaining() == 3 and await lim.reset_after() == 0
        assert [await lim.allow() for _ in range(4)] == [True] * 3 + [False]
        assert await lim.remaining() == 0
        assert 0 < await lim.retry_after() <= 0.4
        assert await lim.retry_after(4) == float("inf")
        started = time.monotonic()
        assert await lim.wait(timeout=1)
        assert time.monotonic() - started < 0.6
        slow = kind(c, fresh(), 1, 100)
        assert await slow.allow()
        with pytest.raises(TimeoutError):
            await slow.wait(timeout=0.05)
        ctx, cancel = with_cancel(background())
        asyncio.get_running_loop().call_later(0.05, cancel)
        with pytest.raises(Canceled):
            await slow.wait(ctx=ctx)

    run(redis_server, body)


def test_sync_and_async_twins_share_one_limiter(redis_server):
    name = fresh()
    sync_client = redis.Redis(host=redis_server.host, port=redis_server.port)
    sync_lim = RedisSlidingWindowLog(sync_client, name, 4, 100)
    assert sync_lim.allow(3)

    async def body(c):
        lim = AsyncRedisSlidingWindowLog(c, name, 4, 100)
        assert lim.key == sync_lim.key
        assert await lim.allow() and not await lim.allow()

    run(redis_server, body)
    sync_client.close()


def test_decorator_with_async_limiter(redis_server):
    async def body(c):
        lim = AsyncRedisFixedWindow(c, fresh(), 1, 100)

        @rate_limited(lim, block=False)
        async def work():
            return 1

        assert await work() == 1
        with pytest.raises(RateLimited) as info:
            await work()
        assert 0 < info.value.retry_after <= 100

        @rate_limited(lim, timeout=0.05)
        async def blocking():
            return 2

        with pytest.raises(RateLimited):
            await blocking()

    run(redis_server, body)


def test_redis_down_raises(redis_servers):
    (server,) = redis_servers(1)

    async def main():
        c = aredis.Redis(host=server.host, port=server.port, socket_timeout=0.3,
                         socket_connect_timeout=0.3, retry=None)
        lim = AsyncRedisTokenBucket(c, "down", 10, 10)
        assert await lim.allow()
        server.kill()
        with pytest.raises(RedisUnavailable, match=f"Redis at {server.host}:{server.port}"):
            await lim.allow()
        with pytest.raises(RedisUnavailable):
            await AsyncRedisFixedWindow(c, "down", 1, 1).allow()
        await c.aclose()

    asyncio.run(main())
