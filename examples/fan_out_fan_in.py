"""Fan-out / fan-in: several producers feed Channels, fan_in merges them, fan_out processes the merge.

Go's pattern with threads: each sensor thread sends readings on its own Channel and closes
it; ``fan_in`` merges the channels into one (closed when all are), and ``fan_out`` runs a
stage of workers over the merged stream.

    python examples/fan_out_fan_in.py
"""

from __future__ import annotations

import sys
import threading

from patterns import Channel, fan_in, fan_out

SENSORS = 3
READINGS = 100


def sensor(index: int, out: Channel) -> None:
    for i in range(READINGS):
        out.send((index, i * (index + 1)))
    out.close()


def calibrate(reading: tuple[int, int]) -> float:
    sensor_index, raw = reading
    return raw * 0.5 + sensor_index


def main() -> int:
    channels = [Channel(8) for _ in range(SENSORS)]
    producers = [threading.Thread(target=sensor, args=(i, ch)) for i, ch in enumerate(channels)]
    for producer in producers:
        producer.start()
    merged = fan_in(*channels)
    total = sum(fan_out(calibrate, merged, workers=4))
    for producer in producers:
        producer.join()
    expected = sum(i * (s + 1) * 0.5 + s for s in range(SENSORS) for i in range(READINGS))
    assert total == expected, (total, expected)
    print(f"{SENSORS * READINGS} readings from {SENSORS} sensors, calibrated total {total:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
