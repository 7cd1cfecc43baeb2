/* Just enough of the Arduino core to run the fabcity sketch on the host in tests. */
#ifndef ARDUINO_STUB_H
#define ARDUINO_STUB_H

#include <stddef.h>
#include <stdint.h>

#define A0 14
#define A1 15
#define A2 16
#define A3 17
#define LED_BUILTIN 13
#define OUTPUT 1
#define HIGH 1
#define LOW 0

uint32_t millis(void);
int analogRead(uint8_t pin);
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t value);

class StubSerial {
public:
    void begin(unsigned long baud);
    int available();
    int read();
    size_t write(const uint8_t *data, size_t len);
};

extern StubSerial Serial;

#endif
