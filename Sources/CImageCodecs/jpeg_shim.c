#include "image_codecs.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct vz_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int premature_end;   // libjpeg only warns on a truncated file and pads it with gray; we treat it as an error
};

static void vz_jpeg_error_exit(j_common_ptr cinfo) {
    longjmp(((struct vz_jpeg_error *)cinfo->err)->jump, 1);
}

static void vz_jpeg_emit(j_common_ptr cinfo, int level) {
    struct vz_jpeg_error *err = (struct vz_jpeg_error *)cinfo->err;
    if (level < 0 && err->base.msg_code == JWRN_JPEG_EOF) err->premature_end = 1;
}

static void vz_jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

// EXIF orientation from an APP1 "Exif\0\0" payload (TIFF header, IFD0 tag 0x0112), or 1.
static int exif_orientation(const uint8_t *p, unsigned len) {
    if (len < 14 || memcmp(p, "Exif\0\0", 6) != 0) return 1;
    const uint8_t *t = p + 6;
    unsigned n = len - 6;
    int le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
#define U16(q) (le ? (unsigned)((q)[0] | (q)[1] << 8) : (unsigned)((q)[0] << 8 | (q)[1]))
#define U32(q) (le ? ((unsigned)(q)[0] | (unsigned)(q)[1] << 8 | (unsigned)(q)[2] << 16 | (unsigned)(q)[3] << 24) \
                   : ((unsigned)(q)[0] << 24 | (unsigned)(q)[1] << 16 | (unsigned)(q)[2] << 8 | (unsigned)(q)[3]))
    unsigned ifd = U32(t + 4);
    if (ifd + 2 > n) return 1;
    unsigned count = U16(t + ifd);
    for (unsigned i = 0; i < count; i++) {
        unsigned e = ifd + 2 + i * 12;
        if (e + 12 > n) break;
        if (U16(t + e) == 0x0112) {
            unsigned v = U16(t + e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
#undef U16
#undef U32
}

int vz_jpeg_decode(const uint8_t *data, size_t size, long max_pixels, uint8_t **out, int *width, int *height,
                   int *orientation, char *errbuf, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct vz_jpeg_error err;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    *out = NULL;
    *orientation = 1;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = vz_jpeg_error_exit;
    err.base.emit_message = vz_jpeg_emit;
    err.base.output_message = vz_jpeg_silent;
    err.premature_end = 0;
    if (setjmp(err.jump)) {
        err.base.format_message((j_common_ptr)&cinfo, errbuf);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(row);
        return VZ_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    if ((long)cinfo.image_width * (long)cinfo.image_height > max_pixels) {
        *width = (int)cinfo.image_width;
        *height = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return VZ_TOO_LARGE;
    }
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) *orientation = exif_orientation(m->data, m->data_length);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, comps = cinfo.output_components;
    pixels = malloc((size_t)w * h * 3);
    row = malloc((size_t)w * comps);
    if (!pixels || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels); free(row);
        snprintf(errbuf, errlen, "out of memory");
        return VZ_NO_MEMORY;
    }
    // Adobe CMYK JPEGs store inverted inks; RGB = stored C * stored K / 255 then.
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    for (int y = 0; y < h; y++) {
        JSAMPROW rows[1] = {row};
        jpeg_read_scanlines(&cinfo, rows, 1);
        uint8_t *dst = pixels + (size_t)y * w * 3;
        if (!cmyk) { memcpy(dst, row, (size_t)w * 3); continue; }
        for (int x = 0; x < w; x++) {
            unsigned c = row[x * 4], m = row[x * 4 + 1], yy = row[x * 4 + 2], k = row[x * 4 + 3];
            if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
            dst[x * 3] = (uint8_t)((c * k + 127) / 255);
            dst[x * 3 + 1] = (uint8_t)((m * k + 127) / 255);
            dst[x * 3 + 2] = (uint8_t)((yy * k + 127) / 255);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (err.premature_end) {
        free(pixels);
        snprintf(errbuf, errlen, "truncated (premature end of JPEG data)");
        return VZ_CORRUPT;
    }
    *out = pixels;
    *width = w;
    *height = h;
    return VZ_OK;
}

void vz_free(void *p) { free(p); }
