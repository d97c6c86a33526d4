#!/usr/bin/env python3
"""Copy named files out of a Qt resource bundle (.rcc) without Qt: used by scripts/setup to take the photos
GCompris ships (Debian gcompris-qt-data) for vizlab's labelled photo set.

usage: rcc_extract.py BUNDLE.rcc DEST_DIR PREFIX NAME=PATH_IN_BUNDLE [...]
Writes DEST_DIR/PREFIX + NAME for each pair; fails if one is missing.
"""
import os, struct, sys, zlib


def entries(path):
    d = open(path, "rb").read()
    if d[:4] != b"qres":
        sys.exit(f"{path}: not a Qt resource bundle")
    version, tree, data, names = struct.unpack(">IIII", d[4:20])
    node = 22 if version >= 2 else 14

    def name_at(off):
        n = struct.unpack(">H", d[names + off:names + off + 2])[0]
        return d[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    out = {}

    def walk(i, prefix):
        base = tree + i * node
        name_off, flags = struct.unpack(">IH", d[base:base + 6])
        name = name_at(name_off) if i else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", d[base + 6:base + 14])
            for k in range(count):
                walk(first + k, prefix + name + "/")
        else:
            offset = struct.unpack(">I", d[base + 10:base + 14])[0]
            size = struct.unpack(">I", d[data + offset:data + offset + 4])[0]
            blob = d[data + offset + 4:data + offset + 4 + size]
            if flags & 1:
                blob = zlib.decompress(blob[4:])
            out[prefix + name] = None if flags & 4 else blob  # flag 4 = zstd, not needed here

    walk(0, "")
    return out


if __name__ == "__main__":
    bundle, dest, prefix = sys.argv[1:4]
    found = entries(bundle)
    for pair in sys.argv[4:]:
        name, inner = pair.split("=", 1)
        blob = found.get(inner)
        if blob is None:
            sys.exit(f"{bundle}: no file {inner}")
        tmp = os.path.join(dest, f".{prefix}{name}.tmp")
        open(tmp, "wb").write(blob)
        os.replace(tmp, os.path.join(dest, prefix + name))
