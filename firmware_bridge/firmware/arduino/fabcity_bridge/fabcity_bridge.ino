/*
 * fabcity firmware for Arduino boards: analog inputs and a DS18B20 reported over USB serial
 * with the fabcity firmware bridge protocol (docs/firmware-protocol.md).
 *
 * Build: copy ../../fabcity_proto.h and ../../fabcity_proto.c next to this sketch (the
 * Arduino IDE compiles every .c file in the sketch folder), install the OneWire library, set
 * DEVICE_ID, upload. Wiring: sensors on A0..A3 (0..5 V on an Uno), a DS18B20 data line on
 * pin 2 with a 4.7 kOhm pull-up to 5 V. On the host: fabcity bridge monitor /dev/ttyACM0.
 */
#include <OneWire.h>

#include "fabcity_proto.h"

/* Must match [a-z0-9][a-z0-9_-]{0,63}; one per board, it names the device on the hub. */
static const char DEVICE_ID[] = "uno-1";
static const char FIRMWARE_VERSION[] = "1.0.0";

static const unsigned long BAUD_RATE = 115200UL;
static const uint32_t DEFAULT_INTERVAL_MS = 5000UL;
static const uint32_t MIN_INTERVAL_MS = 100UL;
static const uint32_t MAX_INTERVAL_MS = 86400000UL;
static const uint32_t BLINK_HALF_PERIOD_MS = 100UL;
static const int32_t ADC_REFERENCE_MV = 5000L;
static const int32_t ADC_FULL_SCALE = 1023L;
static const uint8_t ONE_WIRE_PIN = 2;

/* DS18B20 commands (datasheet): skip ROM, convert T, read scratchpad. */
static const uint8_t DS_SKIP_ROM = 0xCC;
static const uint8_t DS_CONVERT_T = 0x44;
static const uint8_t DS_READ_SCRATCHPAD = 0xBE;
static const int16_t DS_POWER_ON_RAW = 0x0550; /* 85 degC before the first conversion */

static const uint8_t ANALOG_PINS[] = {A0, A1, A2, A3};
#define ANALOG_COUNT ((uint8_t)(sizeof ANALOG_PINS / sizeof ANALOG_PINS[0]))

static const fc_channel CHANNELS[] = {
    {"a0", "voltage", "V"},
    {"a1", "voltage", "V"},
    {"a2", "voltage", "V"},
    {"a3", "voltage", "V"},
    {"ds18b20", "temperature", "degC"},
};
#define CHANNEL_COUNT ((uint8_t)(sizeof CHANNELS / sizeof CHANNELS[0]))
#define DS18B20_CHANNEL 4

static fc_writer writer;
static fc_reader reader;
static OneWire one_wire(ONE_WIRE_PIN);

static uint32_t interval_ms = DEFAULT_INTERVAL_MS;
static uint32_t last_report_ms = 0;
static uint32_t identify_until_ms = 0;
static bool identifying = false;
static bool converting = false;
static bool first_conversion = true;
static bool sensor_ok = true;

static void serial_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    Serial.write(reinterpret_cast<const uint8_t *>(data), len);
}

static void start_conversion()
{
    converting = one_wire.reset() != 0;
    if (converting) {
        one_wire.write(DS_SKIP_ROM);
        one_wire.write(DS_CONVERT_T);
    }
}

/* Read the finished conversion: true and *raw in 1/16 degC, or false if absent or garbled. */
static bool read_temperature(int16_t *raw)
{
    uint8_t data[9];
    uint8_t i;
    if (!converting || one_wire.read_bit() == 0 || !one_wire.reset()) {
        return false; /* no sensor, or conversion still running (bus held low) */
    }
    one_wire.write(DS_SKIP_ROM);
    one_wire.write(DS_READ_SCRATCHPAD);
    for (i = 0; i < sizeof data; i++) {
        data[i] = one_wire.read();
    }
    if (OneWire::crc8(data, 8) != data[8]) {
        return false;
    }
    *raw = (int16_t)(((uint16_t)data[1] << 8) | data[0]);
    if (first_conversion && *raw == DS_POWER_ON_RAW) {
        return false;
    }
    first_conversion = false;
    return true;
}

static void report(uint32_t now)
{
    int16_t raw = 0;
    bool have_temperature = read_temperature(&raw);
    uint8_t i;

    if (!converting) { /* no presence pulse: report the missing sensor once */
        if (sensor_ok) {
            fc_send_error(&writer, now, "sensor_fault", FC_NO_REF, DS18B20_CHANNEL);
        }
        sensor_ok = false;
    } else {
        sensor_ok = true;
    }

    fc_begin_readings(&writer, now);
    for (i = 0; i < ANALOG_COUNT; i++) {
        int32_t millivolts = (int32_t)analogRead(ANALOG_PINS[i]) * ADC_REFERENCE_MV / ADC_FULL_SCALE;
        fc_field_channel(&writer, i, millivolts, 3);
    }
    if (have_temperature) {
        fc_field_channel(&writer, DS18B20_CHANNEL, (int32_t)raw * 625L, 4);
    }
    fc_end(&writer);
    start_conversion();
}

static void handle_command(const fc_frame *frame)
{
    uint32_t now = millis();
    uint32_t value;
    const char *text;
    switch (fc_command_of(frame)) {
    case FC_CMD_HELLO:
        fc_send_hello(&writer, now, DEVICE_ID, FIRMWARE_VERSION, CHANNELS, CHANNEL_COUNT,
                      interval_ms, frame->seq);
        break;
    case FC_CMD_PING:
        fc_begin_ack(&writer, now, frame->seq);
        fc_end(&writer);
        break;
    case FC_CMD_INTERVAL:
        text = fc_frame_get(frame, "ms");
        if (!fc_parse_u32(text, &value) || value < MIN_INTERVAL_MS || value > MAX_INTERVAL_MS) {
            fc_send_error(&writer, now, "bad_arg", frame->seq, FC_NO_CHANNEL);
            break;
        }
        interval_ms = value;
        fc_begin_ack(&writer, now, frame->seq);
        fc_field_u32(&writer, "ms", value);
        fc_end(&writer);
        break;
    case FC_CMD_IDENTIFY:
        if (!fc_identify_seconds(frame, &value)) {
            fc_send_error(&writer, now, "bad_arg", frame->seq, FC_NO_CHANNEL);
            break;
        }
        identifying = true;
        identify_until_ms = now + value * 1000UL;
        fc_begin_ack(&writer, now, frame->seq);
        fc_field_u32(&writer, "s", value);
        fc_end(&writer);
        break;
    default:
        fc_send_error(&writer, now, "unknown_command", frame->seq, FC_NO_CHANNEL);
        break;
    }
}

void setup()
{
    Serial.begin(BAUD_RATE);
    pinMode(LED_BUILTIN, OUTPUT);
    fc_writer_init(&writer, serial_write, NULL);
    fc_reader_init(&reader);
    start_conversion();
    last_report_ms = millis();
    fc_send_hello(&writer, last_report_ms, DEVICE_ID, FIRMWARE_VERSION, CHANNELS, CHANNEL_COUNT,
                  interval_ms, FC_NO_REF);
}

void loop()
{
    fc_frame frame;
    uint32_t now;

    while (Serial.available() > 0) {
        switch (fc_reader_feed(&reader, (char)Serial.read(), &frame)) {
        case FC_FRAME:
            handle_command(&frame);
            break;
        case FC_BAD_CHECKSUM:
            fc_send_error(&writer, millis(), "bad_checksum", FC_NO_REF, FC_NO_CHANNEL);
            break;
        case FC_MALFORMED:
        case FC_OVERLONG:
            fc_send_error(&writer, millis(), "bad_frame", FC_NO_REF, FC_NO_CHANNEL);
            break;
        case FC_NONE:
            break;
        }
    }

    now = millis();
    if (identifying) {
        if ((int32_t)(identify_until_ms - now) > 0) {
            digitalWrite(LED_BUILTIN, ((now / BLINK_HALF_PERIOD_MS) % 2UL) ? HIGH : LOW);
        } else {
            identifying = false;
            digitalWrite(LED_BUILTIN, LOW);
        }
    }
    if ((uint32_t)(now - last_report_ms) >= interval_ms) {
        last_report_ms = now;
        report(now);
    }
}
