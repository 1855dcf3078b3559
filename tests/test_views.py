"""atomics.views: atomics over bytearray, mmap, shared memory and numpy; orders; bad input."""

import gc
import mmap
import sys
import sysconfig
from multiprocessing import shared_memory

import pytest

from atomics import AtomicInt64, MemoryOrder

CFFI_UNSUPPORTED = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and sys.version_info < (3, 14)


if CFFI_UNSUPPORTED:
    pytest.skip("atomics.views needs cffi, which free-threaded 3.13 lacks", allow_module_level=True)

from atomics.views import Int64ArrayView, Int64View  # noqa: E402

R, C, A, REL, AR, S = (MemoryOrder.RELAXED, MemoryOrder.CONSUME, MemoryOrder.ACQUIRE,
                       MemoryOrder.RELEASE, MemoryOrder.ACQ_REL, MemoryOrder.SEQ_CST)


def test_view_reads_and_writes_the_buffer_in_native_byte_order():
    buf = bytearray(24)
    v = Int64View(buf, 8)
    assert v.add(0x0102) == 0x0102
    assert int.from_bytes(buf[8:16], sys.byteorder, signed=True) == 0x0102
    buf[8:16] = (-5).to_bytes(8, sys.byteorder, signed=True)
    assert v.load() == -5 and buf[:8] == bytes(8) and buf[16:] == bytes(8)


def test_array_view_indexing():
    arr = Int64ArrayView(bytearray(8 * 5))
    assert len(arr) == 5
    arr[0] = 7
    arr.inc(-1)
    arr.add(2, 10)
    assert list(arr) == [7, 0, 10, 0, 1] and arr[-1] == 1 and arr.load(2) == 10
    assert arr.compare_exchange(2, 10, 11) == (True, 10) and arr[2] == 11
    elem = arr.view(-3)
    assert isinstance(elem, Int64View) and elem.offset == 16 and elem.inc() == 12 and arr[2] == 12
    with pytest.raises(IndexError):
        arr.inc(5)
    with pytest.raises(IndexError):
        arr[-6]
    with pytest.raises(TypeError):
        arr["0"]


@pytest.mark.parametrize("make", [
    pytest.param(lambda: bytearray(64), id="bytearray"),
    pytest.param(lambda: mmap.mmap(-1, 64), id="mmap"),
    pytest.param(lambda: memoryview(bytearray(64)), id="memoryview"),
])
def test_buffers(make):
    buf = make()
    v = Int64View(buf, 56)
    assert v.fetch_add(3) == 0 and v.load() == 3
    arr = Int64ArrayView(buf)
    assert arr[7] == 3 and len(arr) == 8


def test_numpy_array():
    np = pytest.importorskip("numpy")
    data = np.zeros(4, dtype=np.int64)
    arr = Int64ArrayView(data)
    arr.add(1, 41)
    arr.inc(1)
    assert data[1] == 42
    view = Int64View(data, 24)
    view.store(-1)
    assert data[3] == -1
    frozen = np.zeros(2, dtype=np.int64)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        Int64View(frozen)
    assert Int64View(frozen, readonly=True).load() == 0


def test_shared_memory_keeps_its_export():
    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        arr = Int64ArrayView(shm.buf)
        arr.inc(0)
        with pytest.raises(BufferError):
            shm.close()  # the view pins the mapping
        assert Int64ArrayView(shm.buf)[0] == 1
        del arr
        gc.collect()
    finally:
        shm.close()
        shm.unlink()


def test_view_keeps_its_buffer_alive():
    v = Int64View(bytearray(16), 8)
    gc.collect()
    assert v.inc() == 1 and isinstance(v.buffer, bytearray)
    with pytest.raises(BufferError):
        v.buffer.extend(b"x")  # cannot resize under a view


@pytest.mark.parametrize("offset", [1, 4, 7, 9])
def test_misaligned_offset(offset):
    with pytest.raises(ValueError, match="misaligned"):
        Int64View(bytearray(32), offset)


@pytest.mark.parametrize("offset", [-8, 17, 24, 10**6])
def test_out_of_range_offset(offset):
    with pytest.raises(ValueError, match="does not fit"):
        Int64View(bytearray(24), offset)


def test_misaligned_buffer_and_ragged_size():
    base = bytearray(40)
    with pytest.raises(ValueError, match="misaligned"):
        Int64ArrayView(memoryview(base)[4:36])
    with pytest.raises(ValueError, match="multiple of 8"):
        Int64ArrayView(bytearray(20))


def test_read_only_buffers():
    with pytest.raises(TypeError, match="read-only; pass readonly=True"):
        Int64View(bytes(8))
    with pytest.raises(TypeError, match="read-only"):
        Int64ArrayView(bytes(16))
    data = (5).to_bytes(8, sys.byteorder) + bytes(8)
    ro = Int64View(data, readonly=True)
    assert ro.load() == 5 and ro.readonly and isinstance(ro, Int64View) and int(ro) == 5
    for name, args in [("store", (1,)), ("inc", ()), ("compare_and_swap", (5, 6)), ("update", (abs,))]:
        with pytest.raises(TypeError, match=f"{name}\\(\\) on a read-only view"):
            getattr(ro, name)(*args)
    roa = Int64ArrayView(data, readonly=True)
    assert roa[0] == 5 and roa.readonly
    with pytest.raises(TypeError, match="read-only"):
        roa.inc(0)
    with pytest.raises(TypeError, match="read-only"):
        roa[0] = 1
    assert ro.load() == 5 and roa[1] == 0


@pytest.mark.parametrize("bad,error", [(1.5, TypeError), ("1", TypeError), (2**63, OverflowError),
                                       (-(2**63) - 1, OverflowError)])
@pytest.mark.parametrize("name", ["store", "exchange", "add", "sub", "fetch_add", "fetch_sub",
                                  "fetch_and", "fetch_or", "fetch_xor", "fetch_max", "fetch_min"])
def test_bad_values_change_nothing(name, bad, error):
    v = Int64View(bytearray(8))
    v.store(9)
    arr = Int64ArrayView(bytearray(16))
    with pytest.raises(error, match="outside the int64 range|must be an integer"):
        getattr(v, name)(bad)
    with pytest.raises(error, match="outside the int64 range|must be an integer"):
        getattr(arr, name)(1, bad)
    with pytest.raises(error):
        v.compare_and_swap(9, bad)
    assert v.load() == 9 and list(arr) == [0, 0]


def test_index_objects_accepted():
    class Index:
        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

    v = Int64View(bytearray(16), Index(8))
    assert v.offset == 8
    assert v.add(Index(2)) == 2 and v.compare_and_swap(Index(2), Index(5)) and v.load() == 5
    arr = Int64ArrayView(bytearray(16))
    assert arr.add(Index(1), Index(2)) == 2 and arr[Index(1)] == 2


def test_protocols_match_atomic_int64():
    v = Int64View(bytearray(8))
    v += 6
    v -= 1
    v |= 2
    assert v.load() == 7 and v == 7 and v == AtomicInt64(7) and v < 8 and bool(v)
    assert repr(v) == "Int64View(7, offset=0)" and [0, 1, 2, 3, 4, 5, 6, 7][v] == 7
    with pytest.raises(TypeError, match="unhashable"):
        hash(v)
    with pytest.raises(TypeError, match="cannot pickle"):
        v.__reduce__()


# C11's rules, written out independently of the C predicates the module asks.
LOADS_OK = {R, C, A, S}
STORES_OK = {R, REL, S}


@pytest.mark.parametrize("order", list(MemoryOrder))
def test_load_and_store_orders(order):
    v = Int64View(bytearray(8))
    if order in STORES_OK:
        v.store(3, order=order)
        assert v.load() == 3
    else:
        with pytest.raises(ValueError, match=f"order=MemoryOrder.{order.name} is not allowed for store"):
            v.store(3, order=order)
        assert v.load() == 0
    if order in LOADS_OK:
        assert v.load(order=order) == v.load()
    else:
        with pytest.raises(ValueError, match="not allowed for load"):
            v.load(order=order)


@pytest.mark.parametrize("order", list(MemoryOrder))
@pytest.mark.parametrize("name,args,result,after", [
    ("exchange", (5,), 1, 5), ("add", (2,), 3, 3), ("sub", (2,), -1, -1), ("inc", (), 2, 2),
    ("dec", (), 0, 0), ("fetch_add", (4,), 1, 5), ("fetch_sub", (4,), 1, -3),
    ("fetch_and", (3,), 1, 1), ("fetch_or", (6,), 1, 7), ("fetch_xor", (3,), 1, 2),
    ("fetch_max", (9,), 1, 9), ("fetch_min", (-9,), 1, -9),
])
def test_read_modify_write_takes_every_order(order, name, args, result, after):
    v = Int64View(bytearray(8))
    v.store(1)
    assert getattr(v, name)(*args, order=order) == result and v.load() == after
    arr = Int64ArrayView(bytearray(8))
    arr.store(0, 1, order=S)
    assert getattr(arr, name)(0, *args, order=order) == result and arr[0] == after


def strength(order):
    return {R: 0, REL: 0, C: 1, A: 2, AR: 2, S: 3}[order]


@pytest.mark.parametrize("success", list(MemoryOrder))
@pytest.mark.parametrize("failure", list(MemoryOrder))
def test_compare_exchange_order_pairs(success, failure):
    v = Int64View(bytearray(8))
    allowed = failure in LOADS_OK and strength(failure) <= strength(success)
    if allowed:
        assert v.compare_exchange(0, 1, order=success, failure=failure) == (True, 0)
        assert v.compare_exchange(0, 2, order=success, failure=failure) == (False, 1)
    else:
        with pytest.raises(ValueError, match="failure"):
            v.compare_exchange(0, 1, order=success, failure=failure)
        assert v.load() == 0


def test_order_must_be_a_memory_order():
    v = Int64View(bytearray(8))
    with pytest.raises(TypeError, match="order must be an atomics.MemoryOrder"):
        v.inc(order="relaxed")
    assert v.inc(order=MemoryOrder.RELAXED) == 1 and v.update(lambda x: x + 1, order=AR) == 2


def test_memory_order_numbers_match_the_c_core():
    from atomics._cffi import lib

    for order in MemoryOrder:
        assert bool(lib.ftsync_load_order_valid(order)) == (order in LOADS_OK)
        assert bool(lib.ftsync_store_order_valid(order)) == (order in STORES_OK)
    assert not lib.ftsync_rmw_order_valid(6) and lib.ftsync_i64_is_lock_free()
