# mypy: ignore-errors
# fabcity firmware for the Raspberry Pi Pico (MicroPython): three analog inputs and a DS18B20
# reported over USB serial with the fabcity firmware bridge protocol.
#
# Copy fabcity_proto.py and this file to the board (mpremote cp fabcity_proto.py main.py :)
# and reset it. Wiring: analog inputs on GP26..GP28 (0..3.3 V), a DS18B20 data line on GP22
# with a 4.7 kOhm pull-up to 3V3. On the host: fabcity bridge monitor /dev/ttyACM0.

import select
import sys
import time

import ds18x20
import machine
import onewire
from fabcity_proto import Reader, Writer, fixed, identify_seconds

FIRMWARE_VERSION = "1.0.0"
DEFAULT_INTERVAL_MS = 5000
MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 86400000
ADC_REFERENCE_MV = 3300
ADC_FULL_SCALE = 65535
ONE_WIRE_PIN = 22
BLINK_HALF_PERIOD_MS = 100
UPTIME_MODULUS = 1 << 32

ANALOG_PINS = (26, 27, 28)
CHANNELS = (
    ("a0", "voltage", "V"),
    ("a1", "voltage", "V"),
    ("a2", "voltage", "V"),
    ("ds18b20", "temperature", "degC"),
)
DS18B20_CHANNEL = 3

# The device id must match [a-z0-9][a-z0-9_-]{0,63}: derive it from the flash chip's id.
DEVICE_ID = "pico-" + "".join(f"{b:02x}" for b in machine.unique_id())


class Uptime:
    """Milliseconds since boot as a 32-bit counter (ticks_ms wraps much earlier)."""

    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0

    def now(self):
        tick = time.ticks_ms()
        self._ms = (self._ms + time.ticks_diff(tick, self._last)) % UPTIME_MODULUS
        self._last = tick
        return self._ms


class Thermometer:
    """One DS18B20: a conversion starts after each reading and is read at the next one."""

    def __init__(self, pin):
        self._sensor = ds18x20.DS18X20(onewire.OneWire(machine.Pin(pin)))
        self._rom = None
        self._converting = False

    @property
    def present(self):
        return self._rom is not None

    def read_mantissa(self):
        """The last conversion in 1/10000 degC, or None; then start the next conversion."""
        value = None
        try:
            if self._rom is None:
                roms = self._sensor.scan()
                self._rom = roms[0] if roms else None
            elif self._converting:
                value = round(self._sensor.read_temp(self._rom) * 16) * 625
            if self._rom is not None:
                self._sensor.convert_temp()
                self._converting = True
        except (onewire.OneWireError, OSError):
            self._rom = None
            self._converting = False
        return value


def main():
    out = sys.stdout.buffer
    writer = Writer(out.write)
    reader = Reader()
    uptime = Uptime()
    adcs = [machine.ADC(machine.Pin(p)) for p in ANALOG_PINS]
    thermometer = Thermometer(ONE_WIRE_PIN)
    led = machine.Pin("LED", machine.Pin.OUT)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)

    interval_ms = DEFAULT_INTERVAL_MS
    identify_until = None
    sensor_ok = True
    writer.hello(uptime.now(), DEVICE_ID, FIRMWARE_VERSION, CHANNELS, interval_ms)
    last_report = uptime.now()

    while True:
        # Commands from the host: at most one byte per poll so the loop stays responsive.
        while poller.poll(0):
            for status, frame in reader.feed(sys.stdin.buffer.read(1)):
                now = uptime.now()
                if status != "frame":
                    writer.error(now, "bad_checksum" if status == "bad_checksum" else "bad_frame")
                    continue
                seq, kind, fields = frame
                if kind == "HELLO":
                    writer.hello(now, DEVICE_ID, FIRMWARE_VERSION, CHANNELS, interval_ms, seq)
                elif kind == "PING":
                    writer.ack(now, seq)
                elif kind == "INTERVAL":
                    text = fields.get("ms", "")
                    if text.isdigit() and MIN_INTERVAL_MS <= int(text) <= MAX_INTERVAL_MS:
                        interval_ms = int(text)
                        writer.ack(now, seq, [("ms", interval_ms)])
                    else:
                        writer.error(now, "bad_arg", ref=seq)
                elif kind == "IDENTIFY":
                    seconds = identify_seconds(fields)
                    if seconds is not None:
                        identify_until = time.ticks_add(time.ticks_ms(), seconds * 1000)
                        writer.ack(now, seq, [("s", seconds)])
                    else:
                        writer.error(now, "bad_arg", ref=seq)
                else:
                    writer.error(now, "unknown_command", ref=seq)

        if identify_until is not None:
            if time.ticks_diff(identify_until, time.ticks_ms()) > 0:
                led.value((time.ticks_ms() // BLINK_HALF_PERIOD_MS) % 2)
            else:
                identify_until = None
                led.value(0)

        now = uptime.now()
        if (now - last_report) % UPTIME_MODULUS >= interval_ms:
            last_report = now
            values = []
            for index, adc in enumerate(adcs):
                millivolts = adc.read_u16() * ADC_REFERENCE_MV // ADC_FULL_SCALE
                values.append((index, fixed(millivolts, 3)))
            mantissa = thermometer.read_mantissa()
            if mantissa is not None:
                values.append((DS18B20_CHANNEL, fixed(mantissa, 4)))
            if thermometer.present != sensor_ok:  # report a missing sensor once
                sensor_ok = thermometer.present
                if not sensor_ok:
                    writer.error(now, "sensor_fault", channel=DS18B20_CHANNEL)
            writer.readings(now, values)
        time.sleep_ms(1)


main()
