#!/usr/bin/env python3
"""Writes the small image fixtures under Tests/EngineTests/Fixtures/images/ (committed) and expected.json.

PNGs are written by hand (zlib + struct) from known pixel arrays, so their expected RGBA values do not come from any
decoder. JPEG and WebP fixtures are made with Pillow (a development-only dependency: `pip install pillow`);
the expected JPEG pixels are Pillow's own decode (compared with a small tolerance), WebP is lossless (exact).
"""
import io, json, os, struct, zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EngineTests", "Fixtures", "images")

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

def png(width, height, bit_depth, color_type, rows, extra=b"", interlace=0):
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

W, H = 5, 4
def rgba_at(x, y): return (x * 50 % 256, y * 60 % 256, (x * 7 + y * 31) % 256, 255 - x * 40)

def main():
    os.makedirs(OUT, exist_ok=True)
    files, expected = {}, {}
    px = [[rgba_at(x, y) for x in range(W)] for y in range(H)]
    files["rgb8.png"] = png(W, H, 8, 2, [bytes(c for p in row for c in p[:3]) for row in px])
    expected["rgb8.png"] = [c for row in px for p in row for c in p[:3] + (255,)]
    files["rgba8.png"] = png(W, H, 8, 6, [bytes(c for p in row for c in p) for row in px])
    expected["rgba8.png"] = [c for row in px for p in row for c in p]
    files["gray8.png"] = png(W, H, 8, 0, [bytes(p[0] for p in row) for row in px])
    expected["gray8.png"] = [c for row in px for p in row for c in (p[0], p[0], p[0], 255)]
    files["gray_alpha.png"] = png(W, H, 8, 4, [bytes(c for p in row for c in (p[1], p[3])) for row in px])
    expected["gray_alpha.png"] = [c for row in px for p in row for c in (p[1], p[1], p[1], p[3])]
    # 16-bit: the high byte is the 8-bit value (PIL's behaviour), the low byte is noise that must be dropped.
    files["rgb16.png"] = png(W, H, 16, 2, [b"".join(struct.pack(">H", c * 256 + 77) for p in row for c in p[:3]) for row in px])
    expected["rgb16.png"] = expected["rgb8.png"]
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]
    idx = [[(x + y) % 4 for x in range(W)] for y in range(H)]
    plte = chunk(b"PLTE", bytes(c for p in palette for c in p)) + chunk(b"tRNS", bytes([255, 128, 0]))
    files["palette_trns.png"] = png(W, H, 8, 3, [bytes(row) for row in idx], extra=plte)
    alpha = [255, 128, 0, 255]
    expected["palette_trns.png"] = [c for row in idx for i in row for c in palette[i] + (alpha[i],)]
    # A valid PNG with a flipped byte inside IDAT: the CRC check must reject it.
    good = bytearray(files["rgb8.png"]); at = good.index(b"IDAT") + 10; good[at] ^= 0xFF
    files["corrupt.png"] = bytes(good)
    # Header claims 20000x20000 (400 megapixels) with almost no data: refused before decoding.
    files["huge_header.png"] = png(20000, 20000, 8, 2, [b"\x00" * 3])[:200]
    files["empty.png"] = b""
    files["text.png"] = b"this is not an image\n"

    from PIL import Image
    im = Image.new("RGB", (16, 16))
    im.putdata([((x * 16) % 256, (y * 16) % 256, ((x + y) * 8) % 256) for y in range(16) for x in range(16)])
    buf = io.BytesIO(); im.save(buf, "JPEG", quality=95); files["rgb.jpg"] = buf.getvalue()
    buf = io.BytesIO(); im.convert("L").save(buf, "JPEG", quality=95); files["gray.jpg"] = buf.getvalue()
    buf = io.BytesIO(); im.convert("CMYK").save(buf, "JPEG", quality=95); files["cmyk.jpg"] = buf.getvalue()
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg"):
        expected[name] = [c for p in Image.open(io.BytesIO(files[name])).convert("RGBA").getdata() for c in p]
    # EXIF orientation 6 (rotate 90° clockwise to view): a 16x8 stored image is shown 8x16.
    wide = Image.new("RGB", (16, 8)); wide.putdata([(x * 16, y * 32, 0) for y in range(8) for x in range(16)])
    exif = Image.Exif(); exif[0x0112] = 6
    buf = io.BytesIO(); wide.save(buf, "JPEG", quality=95, exif=exif.tobytes()); files["exif_rotate90.jpg"] = buf.getvalue()
    shown = Image.open(io.BytesIO(files["exif_rotate90.jpg"])).transpose(Image.Transpose.ROTATE_270)
    expected["exif_rotate90.jpg"] = {"size": list(shown.size), "pixels": [c for p in shown.convert("RGBA").getdata() for c in p]}
    files["truncated.jpg"] = files["rgb.jpg"][: len(files["rgb.jpg"]) // 2]
    files["corrupt.jpg"] = files["rgb.jpg"][:20] + b"\x00" * 40 + files["rgb.jpg"][60:]
    rgba = Image.new("RGBA", (W, H)); rgba.putdata([p for row in px for p in row])
    buf = io.BytesIO(); rgba.save(buf, "WEBP", lossless=True); files["lossless.webp"] = buf.getvalue()
    expected["lossless.webp"] = expected["rgba8.png"]
    files["corrupt.webp"] = files["lossless.webp"][:16] + b"\xff" * (len(files["lossless.webp"]) - 16)

    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f: f.write(data)
    with open(os.path.join(OUT, "expected.json"), "w") as f: json.dump(expected, f)
    print("wrote", len(files), "fixtures to", os.path.normpath(OUT))

if __name__ == "__main__":
    main()
