/* fabcity_proto: framing and CRC of the fabcity firmware bridge protocol. See fabcity_proto.h. */
#include "fabcity_proto.h"

#define FC_SEQ_MAX_DIGITS 5
#define FC_KIND_MAX_CHARS 8
#define FC_KEY_MAX_CHARS 16

static const char FC_HEX[] = "0123456789ABCDEF";

/* ---- CRC ----------------------------------------------------------------------------------- */

uint16_t fc_crc16_update(uint16_t crc, uint8_t byte)
{
    uint8_t bit;
    crc ^= (uint16_t)byte << 8;
    for (bit = 0; bit < 8; bit++) {
        crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t fc_crc16(const char *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        crc = fc_crc16_update(crc, (uint8_t)data[i]);
    }
    return crc;
}

/* ---- Writing ------------------------------------------------------------------------------- */

static void fc_put(fc_writer *w, const char *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        w->crc = fc_crc16_update(w->crc, (uint8_t)data[i]);
    }
    w->write(w->ctx, data, len);
}

static size_t fc_strlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

static void fc_put_str(fc_writer *w, const char *s)
{
    fc_put(w, s, fc_strlen(s));
}

static void fc_put_u32(fc_writer *w, uint32_t value)
{
    char digits[10];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n] = (char)('0' + value % 10u);
        value /= 10u;
        n++;
    } while (value != 0u);
    fc_put(w, digits + sizeof digits - n, n);
}

static void fc_put_key(fc_writer *w, const char *key)
{
    fc_put(w, " ", 1);
    fc_put_str(w, key);
    fc_put(w, "=", 1);
}

void fc_writer_init(fc_writer *w, fc_write_fn write, void *ctx)
{
    w->write = write;
    w->ctx = ctx;
    w->seq = 0;
    w->crc = 0xFFFFu;
}

void fc_begin(fc_writer *w, const char *kind)
{
    w->write(w->ctx, "$", 1);
    w->crc = 0xFFFFu;
    fc_put_u32(w, w->seq);
    fc_put(w, " ", 1);
    fc_put_str(w, kind);
    w->seq = (uint16_t)(w->seq + 1u);
}

void fc_field_str(fc_writer *w, const char *key, const char *value)
{
    fc_put_key(w, key);
    fc_put_str(w, value);
}

void fc_field_u32(fc_writer *w, const char *key, uint32_t value)
{
    fc_put_key(w, key);
    fc_put_u32(w, value);
}

static void fc_put_fixed(fc_writer *w, int32_t mantissa, uint8_t decimals)
{
    /* Widen before negating so INT32_MIN is safe. */
    uint32_t magnitude = mantissa < 0 ? (uint32_t)(-(int64_t)mantissa) : (uint32_t)mantissa;
    uint32_t scale = 1u;
    uint8_t i;
    char frac[10];

    if (decimals > 9u) {
        decimals = 9u;
    }
    for (i = 0; i < decimals; i++) {
        scale *= 10u;
    }
    if (mantissa < 0) {
        fc_put(w, "-", 1);
    }
    fc_put_u32(w, magnitude / scale);
    if (decimals > 0u) {
        uint32_t rest = magnitude % scale;
        for (i = decimals; i > 0u; i--) {
            frac[i - 1u] = (char)('0' + rest % 10u);
            rest /= 10u;
        }
        fc_put(w, ".", 1);
        fc_put(w, frac, decimals);
    }
}

void fc_field_fixed(fc_writer *w, const char *key, int32_t mantissa, uint8_t decimals)
{
    fc_put_key(w, key);
    fc_put_fixed(w, mantissa, decimals);
}

void fc_field_channel(fc_writer *w, uint8_t channel, int32_t mantissa, uint8_t decimals)
{
    fc_put(w, " ", 1);
    fc_put_u32(w, channel);
    fc_put(w, "=", 1);
    fc_put_fixed(w, mantissa, decimals);
}

void fc_end(fc_writer *w)
{
    char tail[7];
    uint16_t crc = w->crc;
    tail[0] = '*';
    tail[1] = FC_HEX[(crc >> 12) & 0xFu];
    tail[2] = FC_HEX[(crc >> 8) & 0xFu];
    tail[3] = FC_HEX[(crc >> 4) & 0xFu];
    tail[4] = FC_HEX[crc & 0xFu];
    tail[5] = '\r';
    tail[6] = '\n';
    w->write(w->ctx, tail, sizeof tail);
}

void fc_skip(fc_writer *w, uint16_t count)
{
    w->seq = (uint16_t)(w->seq + count);
}

void fc_send_hello(fc_writer *w, uint32_t uptime_ms, const char *device, const char *firmware,
                   const fc_channel *channels, uint8_t count, uint32_t interval_ms, long ref)
{
    uint8_t i;
    fc_begin(w, "HELLO");
    fc_field_u32(w, "t", uptime_ms);
    if (ref >= 0) {
        fc_field_u32(w, "ref", (uint32_t)ref);
    }
    fc_field_str(w, "proto", FC_PROTOCOL_VERSION);
    fc_field_str(w, "dev", device);
    fc_field_str(w, "fw", firmware);
    fc_field_u32(w, "iv", interval_ms);
    if (count > 0u) {
        fc_put_key(w, "ch");
        for (i = 0; i < count; i++) {
            if (i > 0u) {
                fc_put(w, ",", 1);
            }
            fc_put_str(w, channels[i].sensor);
            fc_put(w, ":", 1);
            fc_put_str(w, channels[i].metric);
            fc_put(w, ":", 1);
            fc_put_str(w, channels[i].unit);
        }
    }
    fc_end(w);
}

void fc_begin_readings(fc_writer *w, uint32_t uptime_ms)
{
    fc_begin(w, "R");
    fc_field_u32(w, "t", uptime_ms);
}

void fc_begin_ack(fc_writer *w, uint32_t uptime_ms, uint16_t ref)
{
    fc_begin(w, "ACK");
    fc_field_u32(w, "t", uptime_ms);
    fc_field_u32(w, "ref", ref);
}

void fc_send_error(fc_writer *w, uint32_t uptime_ms, const char *code, long ref, int channel)
{
    fc_begin(w, "ERR");
    fc_field_u32(w, "t", uptime_ms);
    if (ref >= 0) {
        fc_field_u32(w, "ref", (uint32_t)ref);
    }
    fc_field_str(w, "code", code);
    if (channel >= 0) {
        fc_field_u32(w, "ch", (uint32_t)channel);
    }
    fc_end(w);
}

/* ---- Reading ------------------------------------------------------------------------------- */

void fc_reader_init(fc_reader *r)
{
    r->len = 0;
    r->in_frame = 0;
    r->overlong = 0;
}

static int fc_hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int fc_is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int fc_parse_u32(const char *text, uint32_t *out)
{
    uint32_t value = 0;
    if (text == NULL || *text == '\0') {
        return 0;
    }
    for (; *text != '\0'; text++) {
        uint32_t digit;
        if (*text < '0' || *text > '9') {
            return 0;
        }
        digit = (uint32_t)(*text - '0');
        if (value > (UINT32_MAX - digit) / 10u) {
            return 0;
        }
        value = value * 10u + digit;
    }
    *out = value;
    return 1;
}

/* Split body (NUL-terminated, in place) into seq, kind and fields; 1 if it obeys the grammar. */
static int fc_parse_body(char *body, fc_frame *out)
{
    char *token = body;
    char *cursor;
    uint8_t index = 0;
    uint32_t seq;

    out->count = 0;
    out->kind = NULL;
    for (;;) {
        char *end = token;
        while (*end != ' ' && *end != '\0') {
            end++;
        }
        if (end == token) {
            return 0; /* empty token: leading, trailing or double space */
        }
        {
            char last = *end;
            *end = '\0';
            if (index == 0) {
                if (end - token > FC_SEQ_MAX_DIGITS || !fc_parse_u32(token, &seq) || seq > 0xFFFFu) {
                    return 0;
                }
                out->seq = (uint16_t)seq;
            } else if (index == 1) {
                if (end - token > FC_KIND_MAX_CHARS) {
                    return 0;
                }
                for (cursor = token; cursor < end; cursor++) {
                    if (*cursor < 'A' || *cursor > 'Z') {
                        return 0;
                    }
                }
                out->kind = token;
            } else {
                char *equals = token;
                while (equals < end && *equals != '=') {
                    if (!fc_is_key_char(*equals)) {
                        return 0;
                    }
                    equals++;
                }
                if (equals == token || equals >= end - 1 || equals - token > FC_KEY_MAX_CHARS) {
                    return 0; /* no key, no '=' or no value */
                }
                *equals = '\0';
                if (out->count < FC_MAX_FIELDS) { /* extra fields are ignored */
                    out->keys[out->count] = token;
                    out->values[out->count] = equals + 1;
                    out->count++;
                }
            }
            index++;
            if (last == '\0') {
                break;
            }
            token = end + 1;
        }
    }
    return index >= 2;
}

static fc_status fc_finish_line(fc_reader *r, fc_frame *out)
{
    char *buf = r->buf;
    uint16_t len = r->len;
    uint16_t star;
    uint16_t i;
    uint16_t crc = 0;

    if (len > 0u && buf[len - 1u] == '\r') {
        len--;
    }
    /* The checksum follows the last '*'. */
    for (star = len; star > 0u && buf[star - 1u] != '*'; star--) {
    }
    if (star == 0u || len - star != 4u) {
        return FC_MALFORMED;
    }
    star--; /* index of '*' */
    for (i = 1; i <= 4u; i++) {
        int nibble = fc_hex_value(buf[star + i]);
        if (nibble < 0) {
            return FC_MALFORMED;
        }
        crc = (uint16_t)((crc << 4) | (uint16_t)nibble);
    }
    if (fc_crc16(buf, star) != crc) {
        return FC_BAD_CHECKSUM;
    }
    for (i = 0; i < star; i++) {
        if (buf[i] < 0x20 || buf[i] > 0x7E) {
            return FC_MALFORMED;
        }
    }
    buf[star] = '\0';
    return fc_parse_body(buf, out) ? FC_FRAME : FC_MALFORMED;
}

fc_status fc_reader_feed(fc_reader *r, char c, fc_frame *out)
{
    if (c == '$') { /* a new frame starts here, whatever came before */
        r->in_frame = 1;
        r->len = 0;
        r->overlong = 0;
        return FC_NONE;
    }
    if (!r->in_frame) {
        return FC_NONE; /* noise between frames */
    }
    if (c == '\n') {
        fc_status status;
        r->in_frame = 0;
        status = r->overlong ? FC_OVERLONG : fc_finish_line(r, out);
        r->len = 0;
        r->overlong = 0;
        return status;
    }
    if (r->len >= FC_MAX_LINE_BYTES) {
        r->overlong = 1;
        return FC_NONE;
    }
    r->buf[r->len++] = c;
    return FC_NONE;
}

const char *fc_frame_get(const fc_frame *frame, const char *key)
{
    uint8_t i;
    for (i = 0; i < frame->count; i++) {
        const char *a = frame->keys[i];
        const char *b = key;
        while (*a != '\0' && *a == *b) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return frame->values[i];
        }
    }
    return NULL;
}

static int fc_streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

fc_command fc_command_of(const fc_frame *frame)
{
    if (fc_streq(frame->kind, "HELLO")) return FC_CMD_HELLO;
    if (fc_streq(frame->kind, "PING")) return FC_CMD_PING;
    if (fc_streq(frame->kind, "INTERVAL")) return FC_CMD_INTERVAL;
    if (fc_streq(frame->kind, "IDENTIFY")) return FC_CMD_IDENTIFY;
    return FC_CMD_UNKNOWN;
}

int fc_identify_seconds(const fc_frame *frame, uint32_t *seconds)
{
    const char *text = fc_frame_get(frame, "s");
    uint32_t value = FC_DEFAULT_IDENTIFY_S;
    if (text != NULL && !fc_parse_u32(text, &value)) {
        return 0;
    }
    if (value < FC_MIN_IDENTIFY_S || value > FC_MAX_IDENTIFY_S) {
        return 0;
    }
    *seconds = value;
    return 1;
}
