/*
 * fabcity_proto: framing and CRC of the fabcity firmware bridge protocol (version 1.0).
 *
 * Portable C99, no heap, no stdio, no Arduino dependency: the same file builds for an AVR,
 * an ESP32, an RP2040 and the host's gcc (the test suite compiles it).
 *
 * A frame is one line of printable ASCII:
 *
 *     $<seq> <KIND> <key>=<value> ... *<CRC>\r\n
 *
 * <CRC> is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the bytes between '$' and the
 * last '*', in four upper-case hex digits. The full specification is docs/firmware-protocol.md.
 */
#ifndef FABCITY_PROTO_H
#define FABCITY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FC_PROTOCOL_VERSION "1.0"

/* Receive buffer of a device: commands from the host are short. Override with -D. */
#ifndef FC_MAX_LINE_BYTES
#define FC_MAX_LINE_BYTES 128
#endif
#ifndef FC_MAX_FIELDS
#define FC_MAX_FIELDS 8
#endif

#define FC_NO_REF (-1L)
#define FC_NO_CHANNEL (-1)

/* ---- CRC-16/CCITT-FALSE ------------------------------------------------------------------ */

uint16_t fc_crc16_update(uint16_t crc, uint8_t byte);
uint16_t fc_crc16(const char *data, size_t len);

/* ---- Writing frames ----------------------------------------------------------------------
 * Frames are streamed through a write callback, so no line buffer is needed on the device.
 * fc_begin() writes "$<seq> <KIND>" and takes the next sequence number; every fc_field_*
 * call appends " <key>=<value>"; fc_end() appends "*<CRC>\r\n".
 */

typedef void (*fc_write_fn)(void *ctx, const char *data, size_t len);

typedef struct {
    fc_write_fn write;
    void *ctx;
    uint16_t seq; /* sequence number of the next frame */
    uint16_t crc; /* running CRC of the frame being written */
} fc_writer;

void fc_writer_init(fc_writer *w, fc_write_fn write, void *ctx);
void fc_begin(fc_writer *w, const char *kind);
void fc_field_str(fc_writer *w, const char *key, const char *value);
void fc_field_u32(fc_writer *w, const char *key, uint32_t value);
/* mantissa * 10^-decimals, e.g. (2150, 2) -> "21.50", (-5, 2) -> "-0.05" */
void fc_field_fixed(fc_writer *w, const char *key, int32_t mantissa, uint8_t decimals);
/* A reading value: the key is the channel index. */
void fc_field_channel(fc_writer *w, uint8_t channel, int32_t mantissa, uint8_t decimals);
void fc_end(fc_writer *w);
/* Skip sequence numbers without sending (used by simulators to provoke gaps). */
void fc_skip(fc_writer *w, uint16_t count);

typedef struct {
    const char *sensor; /* [a-z][a-z0-9_]{0,31} */
    const char *metric; /* [a-z][a-z0-9_]{0,31} */
    const char *unit;   /* [A-Za-z0-9%/._()^*-]{1,24} */
} fc_channel;

/* HELLO: who the device is and what it reports; ref is the HELLO request answered, or FC_NO_REF. */
void fc_send_hello(fc_writer *w, uint32_t uptime_ms, const char *device, const char *firmware,
                   const fc_channel *channels, uint8_t count, uint32_t interval_ms, long ref);
/* "$<seq> R t=<uptime_ms>": add fc_field_channel() values, then fc_end(). */
void fc_begin_readings(fc_writer *w, uint32_t uptime_ms);
/* "$<seq> ACK t=<uptime_ms> ref=<ref>": add fields if any, then fc_end(). */
void fc_begin_ack(fc_writer *w, uint32_t uptime_ms, uint16_t ref);
/* A complete ERR frame; ref and channel are optional (FC_NO_REF, FC_NO_CHANNEL). */
void fc_send_error(fc_writer *w, uint32_t uptime_ms, const char *code, long ref, int channel);

/* ---- Reading frames ----------------------------------------------------------------------
 * Feed received bytes one at a time. A '$' always starts a new frame (resynchronisation),
 * bytes outside frames are ignored, and a frame is checked when its line ends.
 */

typedef enum {
    FC_NONE = 0,           /* nothing complete yet */
    FC_FRAME = 1,          /* *out holds a valid frame */
    FC_BAD_CHECKSUM = -1,  /* a complete line whose CRC does not match */
    FC_MALFORMED = -2,     /* a complete line that breaks the grammar */
    FC_OVERLONG = -3       /* a line longer than FC_MAX_LINE_BYTES */
} fc_status;

typedef struct {
    uint16_t seq;
    const char *kind;
    uint8_t count;
    const char *keys[FC_MAX_FIELDS];
    const char *values[FC_MAX_FIELDS];
} fc_frame;

typedef struct {
    char buf[FC_MAX_LINE_BYTES + 1];
    uint16_t len;
    uint8_t in_frame;
    uint8_t overlong;
} fc_reader;

void fc_reader_init(fc_reader *r);
/* Pointers in *out stay valid until the next call. */
fc_status fc_reader_feed(fc_reader *r, char c, fc_frame *out);
/* The value of key in frame, or NULL. */
const char *fc_frame_get(const fc_frame *frame, const char *key);
/* Parse a decimal unsigned integer; returns 1 on success, 0 on bad text or overflow. */
int fc_parse_u32(const char *text, uint32_t *out);

typedef enum {
    FC_CMD_UNKNOWN = 0,
    FC_CMD_HELLO,    /* answer with fc_send_hello(..., ref) */
    FC_CMD_PING,     /* answer with an ACK */
    FC_CMD_INTERVAL, /* field ms: set the reporting interval, ACK with the applied ms */
    FC_CMD_IDENTIFY  /* field s: blink for s seconds, ACK */
} fc_command;

fc_command fc_command_of(const fc_frame *frame);

/* IDENTIFY blinks for s seconds: FC_MIN_IDENTIFY_S..FC_MAX_IDENTIFY_S, default when absent. */
#define FC_MIN_IDENTIFY_S 1u
#define FC_MAX_IDENTIFY_S 3600u
#define FC_DEFAULT_IDENTIFY_S 5u

/* The s field of an IDENTIFY command: 1 with *seconds set, or 0 if it is not a number in
 * range (answer ERR code=bad_arg). */
int fc_identify_seconds(const fc_frame *frame, uint32_t *seconds);

#ifdef __cplusplus
}
#endif

#endif /* FABCITY_PROTO_H */
