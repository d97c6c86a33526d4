#!/usr/bin/env bash
# Acceptance measurements for `vizlab index` / `vizlab top` (issue 5). Not part of `make test`.
# Works on a copy of $VIZLAB_HOME/dataset (`make dataset`) in $OUT, so the corpus itself is never modified.
set -euo pipefail
VIZLAB="${VIZLAB:-.build/release/vizlab}"
HOME_DIR="${VIZLAB_HOME:-$HOME/.cache/vizlab}"
OUT="${OUT:-out/acceptance/index}"
rm -rf "$OUT" && mkdir -p "$OUT"
cp -r "$HOME_DIR/dataset" "$OUT/corpus"
db="$OUT/examples.sqlite"

echo "== full index of the corpus ($(find "$OUT/corpus" -type f \( -name '*.png' -o -name '*.webp' -o -name '*.jpg' \) | wc -l) images)"
/usr/bin/time -f "wall %e s, peak RSS %M kB" "$VIZLAB" index "$OUT/corpus" --db "$db"
echo "database: $(du -h "$db" | cut -f1) ($(stat -c %s "$db") bytes)"

echo "== incremental: 10 more images (copies of 10 corpus images, re-encoded under new names)"
mkdir -p "$OUT/corpus/added"
for f in $(ls "$OUT"/corpus/tuxpaint/*.png | head -10); do
    # a different file (one more byte of trailing data), so the content hash differs too
    cp "$f" "$OUT/corpus/added/$(basename "$f" .png)-copy.png" && printf '\0' >> "$OUT/corpus/added/$(basename "$f" .png)-copy.png"
done
"$VIZLAB" index "$OUT/corpus" --db "$db"

echo "== bad files: 0-byte, truncated JPEG, text named .png, a 170-megapixel PNG header"
mkdir -p "$OUT/corpus/bad"
: > "$OUT/corpus/bad/empty.jpg"
head -c 20000 "$HOME_DIR/samples/baboon.jpg" > "$OUT/corpus/bad/truncated.jpg"
echo "not an image" > "$OUT/corpus/bad/text.png"
python3 - "$OUT/corpus/bad/huge.png" <<'PY'
import struct, sys, zlib
def chunk(kind, body): return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 13000, 13100, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
PY
"$VIZLAB" index "$OUT/corpus" --db "$db"

echo "== removal: the 10 added images deleted"
rm -rf "$OUT/corpus/added"
"$VIZLAB" index "$OUT/corpus" --db "$db"

echo "== vizlab top (answers from the database; grids in $OUT/top)"
for unit in logits:281 logits:282 logits:235 logits:483 blocks.12:40; do
    /usr/bin/time -f "  $unit: %e s" "$VIZLAB" top "$unit" --k 8 --db "$db" --out "$OUT/top/${unit/:/_}.png" | head -5
done
"$VIZLAB" top blocks.5:10 --k 8 --patches --db "$db" --out "$OUT/top/blocks.5_10_patches.png" | tail -1
