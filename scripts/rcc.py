"""Reads Qt binary resource bundles (.rcc) without Qt, for the photos GCompris ships (Debian gcompris-qt-data):
a "qres" header, a tree of 14- or 22-byte nodes, UTF-16 names, size-prefixed data; flag 1 = zlib with a 4-byte
length prefix, flag 4 = zstd (not used by these bundles, refused)."""
import struct, sys, zlib


def rcc_files(path):
    buf = open(path, "rb").read()
    if buf[:4] != b"qres":
        sys.exit("not a Qt resource file: " + path)
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node = 22 if version >= 2 else 14
    def name(off):
        n, = struct.unpack(">H", buf[names + off:names + off + 2])
        return buf[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")
    files, stack = {}, [(0, "")]
    while stack:
        i, prefix = stack.pop()
        base = tree + i * node
        name_off, flags = struct.unpack(">IH", buf[base:base + 6])
        path = prefix + "/" + name(name_off) if i else ""
        if flags & 2:
            count, first = struct.unpack(">II", buf[base + 6:base + 14])
            stack.extend((c, path) for c in range(first, first + count))
        else:
            off, = struct.unpack(">I", buf[base + 10:base + 14])
            size, = struct.unpack(">I", buf[data + off:data + off + 4])
            raw = buf[data + off + 4:data + off + 4 + size]
            files[path] = (flags, raw)
    return files
def content(flags, raw):
    if flags & 4:
        sys.exit("zstd-compressed resource: not supported")
    return zlib.decompress(raw[4:]) if flags & 1 else raw
