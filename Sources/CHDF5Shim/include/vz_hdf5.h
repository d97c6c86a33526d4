#ifndef VIZLAB_HDF5_H
#define VIZLAB_HDF5_H
// Read-only C shims over libhdf5 for weight files. HDF5's type constants are macros over globals and its errors
// print to stderr by default; these wrappers silence the library, bound every size before allocating, and return
// an error code with the library's innermost message. Debian's libhdf5 is the serial (not thread-safe) build:
// vizlab calls these only inside the child process vz_h5_dump forks, one file per child.
#include <stddef.h>
#include <stdint.h>

enum {
    VZ_H5_OK = 0,
    VZ_H5_ERROR = 1,      // the library failed (message in err)
    VZ_H5_TOO_LARGE = 2,  // a declared size exceeds the limit given or the file
    VZ_H5_NOT_FOUND = 3,
    VZ_H5_WRONG_TYPE = 4,
};

enum { VZ_H5_MISSING = 0, VZ_H5_GROUP = 1, VZ_H5_DATASET = 2, VZ_H5_OTHER = 3 };

typedef int64_t vz_h5_id;

// Opens a file read-only (or an in-memory image of one, copied by the library).
int vz_h5_open_file(const char *path, vz_h5_id *file, char *err, size_t errlen);
int vz_h5_open_image(const void *data, size_t size, vz_h5_id *file, char *err, size_t errlen);
void vz_h5_close(vz_h5_id file);

// What is at an absolute path ("/", "/model_weights/fc1"), without following external links.
int vz_h5_kind(vz_h5_id file, const char *path);

// The names of a group's members, in creation order when tracked else by name, NUL-separated into a malloc'd
// buffer (*out, *out_size bytes, *count names); refused beyond max_count names or max_bytes bytes.
int vz_h5_members(vz_h5_id file, const char *path, size_t max_count, size_t max_bytes,
                  char **out, size_t *out_size, size_t *count, char *err, size_t errlen);

// 1 if the object at path has the attribute, 0 if not, -1 on error.
int vz_h5_has_attr(vz_h5_id file, const char *path, const char *attr);

// A string attribute (scalar or 1-D, fixed- or variable-length): NUL-separated into a malloc'd buffer.
int vz_h5_attr_strings(vz_h5_id file, const char *path, const char *attr, size_t max_count, size_t max_bytes,
                       char **out, size_t *out_size, size_t *count, char *err, size_t errlen);

// A dataset's shape (rank <= 8) and element type: is_float 1 for IEEE floats, 0 for integers; elem_size in bytes.
// *stored is the bytes the file holds for it; *filtered is 1 when chunks are compressed (stored may be smaller).
int vz_h5_dataset_info(vz_h5_id file, const char *path, int *rank, uint64_t dims[8], int *is_float,
                       size_t *elem_size, uint64_t *stored, int *filtered, char *err, size_t errlen);

// Reads a dataset of exactly `count` elements converted to float32 into out.
int vz_h5_read_floats(vz_h5_id file, const char *path, float *out, uint64_t count, char *err, size_t errlen);

void vz_h5_free(void *p);

#endif

// ---- Isolated reading -------------------------------------------------------------------------------------------
// libhdf5 (1.10 at least) can crash on a corrupt file (e.g. in its global-heap reader), so vizlab never runs it in
// its own process: vz_h5_dump forks a child that opens the file (a path, or an in-memory image when path is NULL),
// walks every group from "/" (hard links only, bounded depth and count) and writes a record stream to a pipe:
//   'G' path                             a group (children follow in the library's iteration order)
//   'A' path name count {string}*count   a string attribute (fixed- or variable-length; an empty numeric list too)
//   'D' path rank {u64 dim}*rank u64 bytes {float32}*  a numeric dataset, converted to float32 (or 'd' + message when
//                                        it is refused: too large for the file or for 4 GiB)
//   'E' message                          the child's error;  'Z' end
// (strings and paths are u32 length + bytes, little-endian). The child's address space is limited (what it inherits
// + at most 1 GiB + 3× the file, capped at 16 GiB), it is killed
// after `seconds`, and the parent reads at most `max_bytes`; a crash or a kill is reported as an error.
int vz_h5_dump(const char *path, const void *image, size_t image_size, uint64_t max_bytes, unsigned seconds,
               uint8_t **out, size_t *out_size, char *err, size_t errlen);
