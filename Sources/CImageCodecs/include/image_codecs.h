#ifndef VIZLAB_IMAGE_CODECS_H
#define VIZLAB_IMAGE_CODECS_H
// C shims over libjpeg(-turbo) and libpng. Both libraries report errors by longjmp (libjpeg's default even
// calls exit()); these wrappers catch that with setjmp so a corrupt file becomes an error code + message.
#include <stddef.h>
#include <stdint.h>

enum {
    VZ_OK = 0,
    VZ_CORRUPT = 1,     // the library rejected the data (message in errbuf)
    VZ_TOO_LARGE = 2,   // width*height exceeds max_pixels (checked from the header, before decoding)
    VZ_NO_MEMORY = 3,
};

// Decodes a JPEG to RGB8 (grayscale and CMYK/YCCK converted). *orientation is the EXIF orientation (1-8, 1 if absent).
int vz_jpeg_decode(const uint8_t *data, size_t size, long max_pixels, uint8_t **out, int *width, int *height,
                   int *orientation, char *errbuf, size_t errlen);

// Decodes a PNG to RGBA8: palette/tRNS/gray expanded, 16-bit reduced to its high byte (as PIL does).
int vz_png_decode(const uint8_t *data, size_t size, long max_pixels, uint8_t **out, int *width, int *height,
                  char *errbuf, size_t errlen);

// Encodes RGB8 (channels 3) or RGBA8 (channels 4) as PNG into a malloc'd buffer.
int vz_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_size,
                  char *errbuf, size_t errlen);

void vz_free(void *p);

#endif
