/*
 * fabcity_sim: a POSIX program built on fabcity_proto.c, for tests and for trying the bridge
 * without hardware.
 *
 *   fabcity_sim [options]      a simulated device on stdin/stdout (e.g. the master of a pty)
 *   fabcity_sim --vectors      print the protocol's test vectors (docs/firmware-protocol.md)
 *   fabcity_sim --decode       decode frames from stdin, one result line per frame
 *
 * Device options: --device ID, --firmware VERSION, --interval-ms N, --uptime-offset-ms N
 * (start the uptime near the 32-bit wrap), --noise-every N (write a noise line and a truncated
 * frame before every Nth reading), --drop-every N (skip a sequence number before every Nth
 * reading), --max-readings N (exit after N readings).
 *
 * Build: gcc -std=c99 -O2 -I.. fabcity_sim.c ../fabcity_proto.c -o fabcity_sim
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fabcity_proto.h"

#define SIM_OUT_BYTES 2048
#define MIN_INTERVAL_MS 100u
#define MAX_INTERVAL_MS 86400000u

static char out_buf[SIM_OUT_BYTES];
static size_t out_len;

static void write_all(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            exit(0); /* the other end is gone: unplugged */
        }
        data += n;
        len -= (size_t)n;
    }
}

/* Collect a frame and write it with one system call when its line ends. */
static void sim_write(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    if (out_len + len > sizeof out_buf) {
        write_all(out_buf, out_len);
        out_len = 0;
    }
    memcpy(out_buf + out_len, data, len);
    out_len += len;
    if (len > 0 && data[len - 1] == '\n') {
        write_all(out_buf, out_len);
        out_len = 0;
    }
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const fc_channel CHANNELS[] = {
    {"a0", "voltage", "V"},
    {"a1", "voltage", "V"},
    {"ds18b20", "temperature", "degC"},
};
#define CHANNEL_COUNT ((uint8_t)(sizeof CHANNELS / sizeof CHANNELS[0]))

static void print_vectors(void)
{
    fc_writer w;
    fc_writer_init(&w, sim_write, NULL);
    fc_send_hello(&w, 1523, "lab-uno-1", "1.0.0", CHANNELS, CHANNEL_COUNT, 5000, FC_NO_REF);
    fc_begin_readings(&w, 6523);
    fc_field_channel(&w, 0, 512, 3);
    fc_field_channel(&w, 1, 3300, 3);
    fc_field_channel(&w, 2, 215000, 4);
    fc_end(&w);
    fc_begin_readings(&w, 11523);
    fc_field_channel(&w, 0, 0, 3);
    fc_field_channel(&w, 2, -5, 2);
    fc_end(&w);
    fc_begin_ack(&w, 12000, 7);
    fc_end(&w);
    fc_begin_ack(&w, 12100, 8);
    fc_field_u32(&w, "ms", 1000);
    fc_end(&w);
    fc_send_error(&w, 12200, "sensor_fault", FC_NO_REF, 2);
    fc_send_error(&w, 12300, "unknown_command", 9, FC_NO_CHANNEL);
    fc_skip(&w, 65535u - w.seq);
    fc_begin_readings(&w, 4294967295u);
    fc_field_channel(&w, 0, 2147483647, 3);
    fc_end(&w);
    fc_begin_readings(&w, 0);
    fc_field_channel(&w, 0, -2147483647 - 1, 0);
    fc_end(&w);
}

static void decode_stdin(void)
{
    fc_reader reader;
    fc_frame frame;
    int c;
    uint8_t i;
    fc_reader_init(&reader);
    while ((c = getchar()) != EOF) {
        switch (fc_reader_feed(&reader, (char)c, &frame)) {
        case FC_NONE:
            break;
        case FC_FRAME:
            printf("FRAME %u %s", (unsigned)frame.seq, frame.kind);
            for (i = 0; i < frame.count; i++) {
                printf(" %s=%s", frame.keys[i], frame.values[i]);
            }
            printf("\n");
            break;
        case FC_BAD_CHECKSUM:
            printf("BAD_CHECKSUM\n");
            break;
        case FC_MALFORMED:
            printf("MALFORMED\n");
            break;
        case FC_OVERLONG:
            printf("OVERLONG\n");
            break;
        }
    }
}

struct device {
    fc_writer w;
    const char *id;
    const char *firmware;
    uint32_t interval_ms;
    uint64_t boot_ms;
    uint32_t uptime_offset_ms;
};

static uint32_t uptime(const struct device *d)
{
    return (uint32_t)(monotonic_ms() - d->boot_ms) + d->uptime_offset_ms;
}

static void handle_command(struct device *d, const fc_frame *frame)
{
    uint32_t value;
    const char *text;
    switch (fc_command_of(frame)) {
    case FC_CMD_HELLO:
        fc_send_hello(&d->w, uptime(d), d->id, d->firmware, CHANNELS, CHANNEL_COUNT,
                      d->interval_ms, frame->seq);
        break;
    case FC_CMD_PING:
        fc_begin_ack(&d->w, uptime(d), frame->seq);
        fc_end(&d->w);
        break;
    case FC_CMD_INTERVAL:
        text = fc_frame_get(frame, "ms");
        if (!fc_parse_u32(text, &value) || value < MIN_INTERVAL_MS || value > MAX_INTERVAL_MS) {
            fc_send_error(&d->w, uptime(d), "bad_arg", frame->seq, FC_NO_CHANNEL);
            break;
        }
        d->interval_ms = value;
        fc_begin_ack(&d->w, uptime(d), frame->seq);
        fc_field_u32(&d->w, "ms", value);
        fc_end(&d->w);
        break;
    case FC_CMD_IDENTIFY:
        if (!fc_identify_seconds(frame, &value)) {
            fc_send_error(&d->w, uptime(d), "bad_arg", frame->seq, FC_NO_CHANNEL);
            break;
        }
        fc_begin_ack(&d->w, uptime(d), frame->seq);
        fc_field_u32(&d->w, "s", value);
        fc_end(&d->w);
        break;
    default:
        fc_send_error(&d->w, uptime(d), "unknown_command", frame->seq, FC_NO_CHANNEL);
        break;
    }
}

static void send_readings(struct device *d, uint32_t n)
{
    fc_begin_readings(&d->w, uptime(d));
    fc_field_channel(&d->w, 0, (int32_t)(n % 3300u), 3);
    fc_field_channel(&d->w, 1, (int32_t)(3300u - n % 3300u), 3);
    fc_field_channel(&d->w, 2, (int32_t)((344u + n % 16u) * 625u), 4);
    fc_end(&d->w);
}

static long option(int argc, char **argv, const char *name, long fallback)
{
    int i;
    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return strtol(argv[i + 1], NULL, 10);
        }
    }
    return fallback;
}

static const char *option_text(int argc, char **argv, const char *name, const char *fallback)
{
    int i;
    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }
    return fallback;
}

static int run_device(int argc, char **argv)
{
    struct device d;
    fc_reader reader;
    fc_frame frame;
    long noise_every = option(argc, argv, "--noise-every", 0);
    long drop_every = option(argc, argv, "--drop-every", 0);
    long max_readings = option(argc, argv, "--max-readings", -1);
    uint32_t sent = 0;
    uint64_t next_ms;
    char input[256];

    d.id = option_text(argc, argv, "--device", "sim-c-1");
    d.firmware = option_text(argc, argv, "--firmware", "1.0.0-sim");
    d.interval_ms = (uint32_t)option(argc, argv, "--interval-ms", 1000);
    d.uptime_offset_ms = (uint32_t)option(argc, argv, "--uptime-offset-ms", 0);
    d.boot_ms = monotonic_ms();
    fc_writer_init(&d.w, sim_write, NULL);
    fc_reader_init(&reader);

    fc_send_hello(&d.w, uptime(&d), d.id, d.firmware, CHANNELS, CHANNEL_COUNT, d.interval_ms,
                  FC_NO_REF);
    next_ms = monotonic_ms() + d.interval_ms;
    for (;;) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        uint64_t now = monotonic_ms();
        int wait_ms = now >= next_ms ? 0 : (int)(next_ms - now);
        int ready = poll(&pfd, 1, wait_ms);
        if (ready > 0) {
            ssize_t n = read(STDIN_FILENO, input, sizeof input);
            ssize_t i;
            if (n <= 0) {
                if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                    continue;
                }
                return 0; /* unplugged */
            }
            for (i = 0; i < n; i++) {
                switch (fc_reader_feed(&reader, input[i], &frame)) {
                case FC_FRAME:
                    handle_command(&d, &frame);
                    break;
                case FC_BAD_CHECKSUM:
                    fc_send_error(&d.w, uptime(&d), "bad_checksum", FC_NO_REF, FC_NO_CHANNEL);
                    break;
                case FC_MALFORMED:
                case FC_OVERLONG:
                    fc_send_error(&d.w, uptime(&d), "bad_frame", FC_NO_REF, FC_NO_CHANNEL);
                    break;
                case FC_NONE:
                    break;
                }
            }
        }
        if (monotonic_ms() >= next_ms) {
            sent++;
            if (noise_every > 0 && sent % (uint32_t)noise_every == 0u) {
                write_all("boot? \x01\xfe noise\r\n$17 R t=1 0=0.5", 30);
            }
            if (drop_every > 0 && sent % (uint32_t)drop_every == 0u) {
                fc_skip(&d.w, 1);
            }
            send_readings(&d, sent);
            next_ms += d.interval_ms;
            if (max_readings >= 0 && sent >= (uint32_t)max_readings) {
                return 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--vectors") == 0) {
        print_vectors();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--decode") == 0) {
        decode_stdin();
        return 0;
    }
    return run_device(argc, argv);
}
