#include "image_codecs.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vz_png_source { const uint8_t *data; size_t size, offset; char *errbuf; size_t errlen; };

static void vz_png_error(png_structp png, png_const_charp message) {
    struct vz_png_source *src = png_get_error_ptr(png);
    snprintf(src->errbuf, src->errlen, "%s", message);
    png_longjmp(png, 1);
}

static void vz_png_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

static void vz_png_read(png_structp png, png_bytep out, png_size_t n) {
    struct vz_png_source *src = png_get_io_ptr(png);
    if (n > src->size - src->offset) png_error(png, "truncated (file ends inside the image data)");
    memcpy(out, src->data + src->offset, n);
    src->offset += n;
}

int vz_png_decode(const uint8_t *data, size_t size, long max_pixels, uint8_t **out, int *width, int *height,
                  char *errbuf, size_t errlen) {
    struct vz_png_source src = {data, size, 0, errbuf, errlen};
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    *out = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, vz_png_error, vz_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        snprintf(errbuf, errlen, "out of memory");
        return VZ_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return VZ_CORRUPT;
    }
    png_set_read_fn(png, &src, vz_png_read);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    *width = (int)w;
    *height = (int)h;
    if ((long)w * (long)h > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        return VZ_TOO_LARGE;
    }
    int color = png_get_color_type(png, info);
    png_set_expand(png);                         // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
    png_set_strip_16(png);                       // 16 -> 8 bit by taking the high byte (PIL does the same)
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (!(color & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4) png_error(png, "unsupported PNG layout");
    pixels = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *out = pixels;
    return VZ_OK;
}

int vz_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *out_size,
                  char *errbuf, size_t errlen) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    *out = NULL;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        snprintf(errbuf, errlen, "%s", image.message);
        return VZ_CORRUPT;
    }
    uint8_t *buffer = malloc(size);
    if (!buffer) { snprintf(errbuf, errlen, "out of memory"); return VZ_NO_MEMORY; }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        snprintf(errbuf, errlen, "%s", image.message);
        free(buffer);
        return VZ_CORRUPT;
    }
    *out = buffer;
    *out_size = size;
    return VZ_OK;
}
