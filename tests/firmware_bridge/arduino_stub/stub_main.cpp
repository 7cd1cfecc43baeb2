/* Runs the sketch against stdin/stdout with a simulated clock: 10 ms per loop() call,
 * commands from stdin delivered from t = 1 s, stop at the time given in argv[1] (ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "Arduino.h"
#include "OneWire.h"

void setup();
void loop();

StubSerial Serial;
static uint32_t now_ms = 0;
static char input[4096];
static size_t input_len = 0;
static size_t input_pos = 0;
static const uint32_t INPUT_FROM_MS = 1000;
static const uint32_t LOOP_STEP_MS = 10;

uint32_t millis(void) { return now_ms; }
int analogRead(uint8_t pin) { return pin == A0 ? 0 : pin == A1 ? 512 : pin == A2 ? 1023 : 100; }
void pinMode(uint8_t, uint8_t) {}
void digitalWrite(uint8_t, uint8_t) {}

void StubSerial::begin(unsigned long) {}
int StubSerial::available()
{
    return now_ms >= INPUT_FROM_MS ? (int)(input_len - input_pos) : 0;
}
int StubSerial::read() { return input_pos < input_len ? (unsigned char)input[input_pos++] : -1; }
size_t StubSerial::write(const uint8_t *data, size_t len) { return fwrite(data, 1, len, stdout); }

OneWire::OneWire(uint8_t) : scratchpad_{0x58, 0x01, 0x4B, 0x46, 0x7F, 0xFF, 0x08, 0x10, 0}, next_(9)
{
    scratchpad_[8] = crc8(scratchpad_, 8);
}
uint8_t OneWire::reset() { next_ = 9; return 1; }
void OneWire::write(uint8_t byte) { if (byte == 0xBE) next_ = 0; }
uint8_t OneWire::read() { return next_ < 9 ? scratchpad_[next_++] : 0xFF; }
uint8_t OneWire::read_bit() { return 1; }
uint8_t OneWire::crc8(const uint8_t *data, uint8_t len)
{
    uint8_t crc = 0;
    while (len--) {
        uint8_t byte = *data++;
        for (uint8_t i = 0; i < 8; i++) {
            uint8_t mix = (uint8_t)((crc ^ byte) & 0x01);
            crc >>= 1;
            if (mix) crc ^= 0x8C;
            byte >>= 1;
        }
    }
    return crc;
}

int main(int argc, char **argv)
{
    uint32_t stop_ms = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 12000;
    input_len = fread(input, 1, sizeof input, stdin);
    setup();
    for (now_ms = 0; now_ms <= stop_ms; now_ms += LOOP_STEP_MS) {
        loop();
    }
    return 0;
}
