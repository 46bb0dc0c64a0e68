#!/usr/bin/python3
"""An independent reader of TensorBoard event files, for tests/util/test_tensorboard.cpp.

usage: read_tfevents.py EVENT_FILE

Reads the TFRecords (uint64 length, masked CRC32C of the length, payload, masked CRC32C of the
payload), checks every CRC, decodes each payload as TensorBoard's Event proto with a hand-written
protobuf wire-format decoder (no protobuf package: Debian's python3 lacks it), decodes PNG images
with zlib, and prints the events as JSON on stdout:
  {"events": [{"wall_time", "step", "file_version"?, "values": [{"tag", "simple_value"} |
               {"tag", "image": {"height", "width", "colorspace", "png_hex", "png": {"width",
               "height", "channels", "pixels_hex"}}}]}], "torn_tail": bool}
A record cut short at the end of the file (a writer killed mid-record) sets torn_tail; a bad CRC
or anything else wrong exits 1 with a message.

Field numbers, typed from tensorboard/compat/proto/event.proto and summary.proto:
  Event: wall_time 1 (double), step 2 (int64), file_version 3 (string), summary 5 (Summary)
  Summary: value 1 (repeated Value)
  Summary.Value: tag 1 (string), simple_value 2 (float), image 4 (Summary.Image)
  Summary.Image: height 1, width 2, colorspace 3 (int32), encoded_image_string 4 (bytes)
"""
import json
import struct
import sys
import zlib


def make_crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


CRC32C_TABLE = make_crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Bad(Exception):
    pass


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise Bad("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise Bad("varint longer than 10 bytes")


def fields(data):
    """(field number, wire type, value) of each field of a message; values: int or bytes."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise Bad("truncated fixed64")
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            if pos + length > len(data):
                raise Bad("truncated length-delimited field %d" % number)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            if pos + 4 > len(data):
                raise Bad("truncated fixed32")
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise Bad("unsupported wire type %d (field %d)" % (wire, number))
        yield number, wire, value


def expect_wire(number, wire, want, message):
    if wire != want:
        raise Bad("%s field %d has wire type %d, expected %d" % (message, number, wire, want))


def int64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(png):
    """8-bit, non-interlaced grey / RGB / grey+alpha / RGBA PNG -> width, height, channels, pixels."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise Bad("image is not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise Bad("PNG chunk %r has a bad CRC" % kind)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise Bad("PNG without IHDR")
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace != 0:
        raise Bad("unsupported PNG (depth %d, colour type %d, interlace %d)" % (depth, color, interlace))
    raw = zlib.decompress(idat)
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise Bad("PNG data has %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    pixels, previous = bytearray(), bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            upleft = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[x] = (line[x] + paeth(left, up, upleft)) & 0xFF
            elif kind != 0:
                raise Bad("PNG row %d has filter type %d" % (y, kind))
        pixels += line
        previous = line
    return {"width": width, "height": height, "channels": channels, "pixels_hex": bytes(pixels).hex()}


def decode_image(data):
    image = {"height": 0, "width": 0, "colorspace": 0, "png_hex": ""}
    names = {1: "height", 2: "width", 3: "colorspace"}
    for number, wire, value in fields(data):
        if number in names:
            expect_wire(number, wire, 0, "Summary.Image")
            image[names[number]] = int64(value)
        elif number == 4:
            expect_wire(number, wire, 2, "Summary.Image")
            image["png_hex"] = value.hex()
            image["png"] = decode_png(value)
    return image


def decode_value(data):
    value = {}
    for number, wire, field in fields(data):
        if number == 1:
            expect_wire(number, wire, 2, "Summary.Value")
            value["tag"] = field.decode("utf-8")
        elif number == 2:
            expect_wire(number, wire, 5, "Summary.Value")
            value["simple_value"] = struct.unpack("<f", field)[0]
        elif number == 4:
            expect_wire(number, wire, 2, "Summary.Value")
            value["image"] = decode_image(field)
    return value


def decode_event(data):
    event = {"wall_time": 0.0, "step": 0, "values": []}
    for number, wire, value in fields(data):
        if number == 1:
            expect_wire(number, wire, 1, "Event")
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            expect_wire(number, wire, 0, "Event")
            event["step"] = int64(value)
        elif number == 3:
            expect_wire(number, wire, 2, "Event")
            event["file_version"] = value.decode("utf-8")
        elif number == 5:
            expect_wire(number, wire, 2, "Event")
            for summary_number, summary_wire, summary_value in fields(value):
                if summary_number == 1:
                    expect_wire(summary_number, summary_wire, 2, "Summary")
                    event["values"].append(decode_value(summary_value))
    return event


def read_records(data):
    """The payloads of the file's records; True when the last one is cut short."""
    pos, payloads = 0, []
    while pos < len(data):
        if len(data) - pos < 12:
            return payloads, True
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(crc32c(header)) != length_crc:
            raise Bad("record at byte %d: bad length CRC" % pos)
        if len(data) - pos < 16 + length:
            return payloads, True
        payload = data[pos + 12:pos + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked(crc32c(payload)) != payload_crc:
            raise Bad("record at byte %d: bad payload CRC" % pos)
        payloads.append(payload)
        pos += 16 + length
    return payloads, False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    try:
        payloads, torn = read_records(data)
        events = [decode_event(p) for p in payloads]
    except (Bad, UnicodeDecodeError, zlib.error, struct.error) as e:
        sys.exit("%s: %s" % (sys.argv[1], e))
    json.dump({"events": events, "torn_tail": torn}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
