"""An MCP3008 on gpiozero's mock SPI pins that answers with voltages the test chooses."""

from collections.abc import Callable

from gpiozero.pins.mock import MockSPIDevice

# Software SPI pins gpiozero's MockFactory uses for SPI port 0, device 0 (CE0).
CLOCK_PIN, MOSI_PIN, MISO_PIN, SELECT_PIN = 11, 10, 9, 8
VREF_V = 3.3
BITS = 10


class MockMcp3008(MockSPIDevice):
    """Answers each conversion with ``source(channel, n)`` volts (n counts conversions)."""

    def __init__(self, source: Callable[[int, int], float]) -> None:
        super().__init__(CLOCK_PIN, MOSI_PIN, MISO_PIN, SELECT_PIN)
        self.source = source
        self.conversions = 0
        self.state = "idle"

    def on_start(self) -> None:
        super().on_start()
        self.state = "idle"

    def on_bit(self) -> None:
        # MCP3008: start bit, single/diff bit, 3 channel bits, then a null bit and 10 data bits
        if self.state == "idle":
            if self.rx_buf[-1]:
                self.state = "mode"
                self.rx_buf = []
        elif self.state == "mode":
            self.state = "channel"
            self.rx_buf = []
        elif self.state == "channel" and len(self.rx_buf) == 3:
            volts = min(max(self.source(self.rx_word(), self.conversions), 0.0), VREF_V)
            self.conversions += 1
            self.tx_word(round(volts / VREF_V * (2**BITS - 1)), BITS + 2)
            self.state = "result"
        elif self.state == "result" and not self.tx_buf:
            self.state = "idle"
            self.rx_buf = []
