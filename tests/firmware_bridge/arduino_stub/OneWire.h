/* A OneWire bus with one simulated DS18B20 reading 21.5 degC (raw 0x0158), for host tests. */
#ifndef ONEWIRE_STUB_H
#define ONEWIRE_STUB_H

#include <stdint.h>

class OneWire {
public:
    explicit OneWire(uint8_t pin);
    uint8_t reset();
    void write(uint8_t byte);
    uint8_t read();
    uint8_t read_bit();
    static uint8_t crc8(const uint8_t *data, uint8_t len);

private:
    uint8_t scratchpad_[9];
    uint8_t next_;
};

#endif
