"""A serial sensor unplugged under the sampler: errors counted, others unaffected, recovery."""

import threading
from pathlib import Path

from edge.config import SensorConfig
from edge.drivers import create_driver
from edge.sampler import Sampler
from fabcity.reading import Reading
from tests.edge.drivers.serial_sim import PtyDevice, Sds011Sim, wait_until

W1_SLAVE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
INTERVAL_S = 0.1


def test_unplugged_serial_sensor_recovers_while_others_keep_reading(tmp_path: Path) -> None:
    sim = Sds011Sim(pm2_5=10.0)
    dust = PtyDevice(tmp_path / "ttyUSB0", sim)
    dust.plug()
    w1 = tmp_path / "w1" / "28-0316a2795bff"
    w1.mkdir(parents=True)
    (w1 / "w1_slave").write_text(W1_SLAVE)
    got: list[Reading] = []
    lock = threading.Lock()

    def sink(readings: list[Reading]) -> None:
        with lock:
            got.extend(readings)

    def count(sensor: str, value: float | None = None) -> int:
        with lock:
            return sum(r.sensor == sensor and (value is None or r.value == value) for r in got)

    sampler = Sampler("lab", "pi1", sink)
    serial_driver = create_driver(SensorConfig(driver="sds011", name="dust", port=str(dust.path),
                                               interval_s=INTERVAL_S, timeout_s=0.3))
    stats = sampler.add(serial_driver, INTERVAL_S)
    sampler.add(create_driver(SensorConfig(driver="ds18b20", name="water",
                                           devices_dir=str(w1.parent))), INTERVAL_S)
    sampler.start()
    try:
        assert wait_until(lambda: count("dust", 10.0) >= 2)
        dust.unplug()
        assert wait_until(lambda: stats.errors >= 3)
        water_before = count("water")
        assert wait_until(lambda: count("water") >= water_before + 3)  # unaffected
        sim.pm2_5 = 20.0
        dust.plug()
        assert wait_until(lambda: count("dust", 20.0) >= 2, timeout_s=5)
    finally:
        sampler.stop()
        if dust.path.is_symlink():
            dust.unplug()
    assert stats.last_error is None
