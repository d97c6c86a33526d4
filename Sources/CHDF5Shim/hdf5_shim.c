#define _GNU_SOURCE  // pipe2
#include "vz_hdf5.h"
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Debian 12 ships 1.10; the 1.12+ names of the same calls.
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t vz_link_info;
typedef H5O_info2_t vz_object_info;
#define vz_is_hdf5(p) H5Fis_accessible((p), H5P_DEFAULT)
#define vz_link_info_get(f, p, li) H5Lget_info2((f), (p), (li), H5P_DEFAULT)
#define vz_object_info_get(f, p, oi) H5Oget_info_by_name3((f), (p), (oi), H5O_INFO_BASIC, H5P_DEFAULT)
#define vz_iterate H5Literate2
#else
typedef H5L_info_t vz_link_info;
typedef H5O_info_t vz_object_info;
#define vz_is_hdf5(p) H5Fis_hdf5((p))
#define vz_link_info_get(f, p, li) H5Lget_info((f), (p), (li), H5P_DEFAULT)
#define vz_object_info_get(f, p, oi) H5Oget_info_by_name2((f), (p), (oi), H5O_INFO_BASIC, H5P_DEFAULT)
#define vz_iterate H5Literate
#endif

static int quiet_done = 0;
static void quiet(void) {
    if (!quiet_done) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); quiet_done = 1; }
}

static herr_t walk_innermost(unsigned n, const H5E_error2_t *e, void *data) {
    // Walked downward (from the API call inwards): the last description written is the innermost one.
    (void)n;
    char *out = (char *)((void **)data)[0];
    size_t len = *(size_t *)((void **)data)[1];
    if (out && len && e->desc && e->desc[0]) snprintf(out, len, "%s", e->desc);
    return 0;
}

static int fail(char *err, size_t errlen, const char *what) {
    if (err && errlen) {
        char inner[256] = "";
        size_t innerlen = sizeof inner;
        void *data[2] = {inner, &innerlen};
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_innermost, data);
        H5Eclear2(H5E_DEFAULT);
        if (inner[0]) snprintf(err, errlen, "%s (%s)", what, inner);
        else snprintf(err, errlen, "%s", what);
    }
    return VZ_H5_ERROR;
}

static int say(char *err, size_t errlen, int code, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return code;
}

int vz_h5_open_file(const char *path, vz_h5_id *file, char *err, size_t errlen) {
    quiet();
    if (vz_is_hdf5(path) <= 0) { H5Eclear2(H5E_DEFAULT); return say(err, errlen, VZ_H5_ERROR, "not an HDF5 file"); }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fail(err, errlen, "HDF5 cannot open it");
    *file = f;
    return VZ_H5_OK;
}

int vz_h5_open_image(const void *data, size_t size, vz_h5_id *file, char *err, size_t errlen) {
    quiet();
    if (size < 8 || memcmp(data, "\x89HDF\r\n\x1a\n", 8) != 0) return say(err, errlen, VZ_H5_ERROR, "not an HDF5 file");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fail(err, errlen, "HDF5 property list");
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_file_image(fapl, (void *)data, size) < 0) {
        H5Pclose(fapl);
        return fail(err, errlen, "HDF5 file image");
    }
    hid_t f = H5Fopen("in-memory.h5", H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return fail(err, errlen, "HDF5 cannot open it");
    *file = f;
    return VZ_H5_OK;
}

void vz_h5_close(vz_h5_id file) { if (file >= 0) H5Fclose((hid_t)file); H5Eclear2(H5E_DEFAULT); }

int vz_h5_kind(vz_h5_id file, const char *path) {
    if (strcmp(path, "/") != 0) {
        // Every prefix must exist as a hard link before H5Oget_info can be asked (else the library errors).
        char buf[4096];
        size_t n = strlen(path);
        if (n >= sizeof buf) return VZ_H5_MISSING;
        memcpy(buf, path, n + 1);
        for (size_t i = 1; i <= n; i++) {
            if (buf[i] == '/' || buf[i] == 0) {
                char c = buf[i];
                buf[i] = 0;
                htri_t e = H5Lexists((hid_t)file, buf, H5P_DEFAULT);
                if (e <= 0) { H5Eclear2(H5E_DEFAULT); return VZ_H5_MISSING; }
                vz_link_info li;
                if (vz_link_info_get((hid_t)file, buf, &li) < 0 || li.type != H5L_TYPE_HARD) {
                    H5Eclear2(H5E_DEFAULT); return VZ_H5_OTHER;
                }
                buf[i] = c;
            }
        }
    }
    vz_object_info info;
    if (vz_object_info_get((hid_t)file, path, &info) < 0) { H5Eclear2(H5E_DEFAULT); return VZ_H5_MISSING; }
    switch (info.type) {
    case H5O_TYPE_GROUP: return VZ_H5_GROUP;
    case H5O_TYPE_DATASET: return VZ_H5_DATASET;
    default: return VZ_H5_OTHER;
    }
}

typedef struct { char *buf; size_t size, cap, count, max_count, max_bytes; int overflow; } names_t;

static int append(names_t *n, const char *s) {
    size_t len = strlen(s) + 1;
    if (n->count + 1 > n->max_count || n->size + len > n->max_bytes) { n->overflow = 1; return -1; }
    if (n->size + len > n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4096;
        while (cap < n->size + len) cap *= 2;
        char *b = realloc(n->buf, cap);
        if (!b) { n->overflow = 1; return -1; }
        n->buf = b; n->cap = cap;
    }
    memcpy(n->buf + n->size, s, len);
    n->size += len; n->count++;
    return 0;
}

static herr_t member_cb(hid_t g, const char *name, const vz_link_info *info, void *data) {
    (void)g; (void)info;
    return append((names_t *)data, name) < 0 ? 1 : 0;
}

int vz_h5_members(vz_h5_id file, const char *path, size_t max_count, size_t max_bytes,
                  char **out, size_t *out_size, size_t *count, char *err, size_t errlen) {
    if (vz_h5_kind(file, path) != VZ_H5_GROUP) return say(err, errlen, VZ_H5_NOT_FOUND, "no such group");
    hid_t g = H5Gopen2((hid_t)file, path, H5P_DEFAULT);
    if (g < 0) return fail(err, errlen, "cannot open group");
    names_t n = {0};
    n.max_count = max_count; n.max_bytes = max_bytes;
    H5_index_t order = H5_INDEX_NAME;
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    if (gcpl >= 0) {
        if (H5Pget_link_creation_order(gcpl, &flags) >= 0 && (flags & H5P_CRT_ORDER_TRACKED) && (flags & H5P_CRT_ORDER_INDEXED)) order = H5_INDEX_CRT_ORDER;
        H5Pclose(gcpl);
    }
    hsize_t idx = 0;
    herr_t r = vz_iterate(g, order, H5_ITER_INC, &idx, member_cb, &n);
    H5Gclose(g);
    if (n.overflow) { free(n.buf); H5Eclear2(H5E_DEFAULT); return say(err, errlen, VZ_H5_TOO_LARGE, "group has too many members"); }
    if (r < 0) { free(n.buf); return fail(err, errlen, "cannot list group"); }
    *out = n.buf; *out_size = n.size; *count = n.count;
    return VZ_H5_OK;
}

int vz_h5_has_attr(vz_h5_id file, const char *path, const char *attr) {
    int k = vz_h5_kind(file, path);
    if (k != VZ_H5_GROUP && k != VZ_H5_DATASET) return 0;
    htri_t e = H5Aexists_by_name((hid_t)file, path, attr, H5P_DEFAULT);
    if (e < 0) { H5Eclear2(H5E_DEFAULT); return -1; }
    return e > 0;
}

int vz_h5_attr_strings(vz_h5_id file, const char *path, const char *attr, size_t max_count, size_t max_bytes,
                       char **out, size_t *out_size, size_t *count, char *err, size_t errlen) {
    if (vz_h5_has_attr(file, path, attr) != 1) return say(err, errlen, VZ_H5_NOT_FOUND, "no such attribute");
    hid_t a = H5Aopen_by_name((hid_t)file, path, attr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return fail(err, errlen, "cannot open attribute");
    int code = VZ_H5_OK;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a), mt = -1;
    names_t n = {0};
    n.max_count = max_count; n.max_bytes = max_bytes;
    if (t < 0 || s < 0) { code = fail(err, errlen, "cannot read attribute type"); goto done; }
    int rank = H5Sget_simple_extent_ndims(s);
    hsize_t dims[1] = {1};
    if (rank < 0 || rank > 1) { code = say(err, errlen, VZ_H5_WRONG_TYPE, "attribute is not a scalar or a list"); goto done; }
    if (rank == 1 && H5Sget_simple_extent_dims(s, dims, NULL) < 0) { code = fail(err, errlen, "attribute shape"); goto done; }
    hsize_t items = dims[0];
    if (H5Tget_class(t) != H5T_STRING) {
        // numpy writes an empty list (a layer without weights' weight_names) as an empty float array.
        if (items == 0) { *out = NULL; *out_size = 0; *count = 0; goto done; }
        code = say(err, errlen, VZ_H5_WRONG_TYPE, "attribute is not a string"); goto done;
    }
    if (items > max_count) { code = say(err, errlen, VZ_H5_TOO_LARGE, "attribute has too many strings"); goto done; }
    if (H5Tis_variable_str(t) > 0) {
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char **ptrs = calloc(items ? items : 1, sizeof(char *));
        if (!ptrs) { code = say(err, errlen, VZ_H5_TOO_LARGE, "out of memory"); goto done; }
        if (H5Aread(a, mt, ptrs) < 0) { free(ptrs); code = fail(err, errlen, "cannot read attribute"); goto done; }
        for (hsize_t i = 0; i < items && !n.overflow; i++) append(&n, ptrs[i] ? ptrs[i] : "");
        H5Dvlen_reclaim(mt, s, H5P_DEFAULT, ptrs);
        free(ptrs);
    } else {
        size_t size = H5Tget_size(t);
        if (size == 0 || size > max_bytes || (items && size * items > max_bytes)) { code = say(err, errlen, VZ_H5_TOO_LARGE, "attribute is too large"); goto done; }
        mt = H5Tcopy(t);
        char *raw = calloc(items ? items : 1, size);
        char *one = malloc(size + 1);
        if (!raw || !one) { free(raw); free(one); code = say(err, errlen, VZ_H5_TOO_LARGE, "out of memory"); goto done; }
        if (H5Aread(a, mt, raw) < 0) { free(raw); free(one); code = fail(err, errlen, "cannot read attribute"); goto done; }
        for (hsize_t i = 0; i < items && !n.overflow; i++) {
            memcpy(one, raw + i * size, size);
            one[size] = 0;
            append(&n, one);
        }
        free(raw); free(one);
    }
    if (n.overflow) { code = say(err, errlen, VZ_H5_TOO_LARGE, "attribute is too large"); goto done; }
    *out = n.buf; *out_size = n.size; *count = n.count;
    n.buf = NULL;
done:
    free(n.buf);
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    return code;
}

int vz_h5_dataset_info(vz_h5_id file, const char *path, int *rank, uint64_t dims[8], int *is_float,
                       size_t *elem_size, uint64_t *stored, int *filtered, char *err, size_t errlen) {
    if (vz_h5_kind(file, path) != VZ_H5_DATASET) return say(err, errlen, VZ_H5_NOT_FOUND, "no such dataset");
    hid_t d = H5Dopen2((hid_t)file, path, H5P_DEFAULT);
    if (d < 0) return fail(err, errlen, "cannot open dataset");
    int code = VZ_H5_OK;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d), p = H5Dget_create_plist(d);
    if (t < 0 || s < 0 || p < 0) { code = fail(err, errlen, "cannot read dataset header"); goto done; }
    H5T_class_t c = H5Tget_class(t);
    if (c != H5T_FLOAT && c != H5T_INTEGER) { code = say(err, errlen, VZ_H5_WRONG_TYPE, "dataset is not numeric"); goto done; }
    *is_float = c == H5T_FLOAT;
    *elem_size = H5Tget_size(t);
    int r = H5Sget_simple_extent_ndims(s);
    if (r < 0 || r > 8) { code = say(err, errlen, VZ_H5_WRONG_TYPE, "dataset rank is not 0...8"); goto done; }
    hsize_t hd[8];
    if (r > 0 && H5Sget_simple_extent_dims(s, hd, NULL) < 0) { code = fail(err, errlen, "dataset shape"); goto done; }
    *rank = r;
    for (int i = 0; i < r; i++) dims[i] = hd[i];
    *stored = H5Dget_storage_size(d);
    *filtered = H5Pget_nfilters(p) > 0;
done:
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (p >= 0) H5Pclose(p);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return code;
}

int vz_h5_read_floats(vz_h5_id file, const char *path, float *out, uint64_t count, char *err, size_t errlen) {
    hid_t d = H5Dopen2((hid_t)file, path, H5P_DEFAULT);
    if (d < 0) return fail(err, errlen, "cannot open dataset");
    hid_t s = H5Dget_space(d);
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    int code = VZ_H5_OK;
    if (n < 0 || (uint64_t)n != count) code = say(err, errlen, VZ_H5_WRONG_TYPE, "dataset size changed");
    else if (count > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) code = fail(err, errlen, "cannot read dataset");
    if (s >= 0) H5Sclose(s);
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    return code;
}

void vz_h5_free(void *p) { free(p); }

// ---- Isolated reading (see the header) ---------------------------------------------------------------------------
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { int fd; int failed; uint64_t objects; uint64_t file_size; uint64_t emitted; } dump_t;

static void put(dump_t *d, const void *p, size_t n) {
    const char *c = p;
    while (n > 0 && !d->failed) {
        ssize_t w = write(d->fd, c, n);
        if (w < 0) { if (errno == EINTR) continue; d->failed = 1; return; }
        c += w; n -= (size_t)w;
    }
}
static void put_u32(dump_t *d, uint32_t v) { put(d, &v, 4); }
static void put_u64(dump_t *d, uint64_t v) { put(d, &v, 8); }
static void put_str(dump_t *d, const char *s) { uint32_t n = (uint32_t)strlen(s); put_u32(d, n); put(d, s, n); }

static int dump_group(dump_t *d, hid_t file, const char *path, int depth);

static herr_t dump_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    void **ctx = data;
    dump_t *d = ctx[0];
    const char *path = ctx[1];
    hid_t file = *(hid_t *)ctx[2];
    char *out = NULL; size_t size = 0, count = 0; char err[256];
    (void)loc;
    if (vz_h5_attr_strings(file, path, name, 1 << 20, 64 << 20, &out, &size, &count, err, sizeof err) == VZ_H5_OK) {
        put(d, "A", 1); put_str(d, path); put_str(d, name); put_u32(d, (uint32_t)count);
        size_t at = 0;
        for (size_t i = 0; i < count; i++) { put_str(d, out + at); at += strlen(out + at) + 1; }
    }
    free(out);
    return d->failed ? 1 : 0;
}

static void dump_attrs(dump_t *d, hid_t file, const char *path) {
    hid_t o = H5Oopen(file, path, H5P_DEFAULT);
    if (o < 0) { H5Eclear2(H5E_DEFAULT); return; }
    void *ctx[3] = {d, (void *)path, &file};
    hsize_t idx = 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, dump_attr, ctx);
    H5Oclose(o);
    H5Eclear2(H5E_DEFAULT);
}

static void dump_dataset(dump_t *d, hid_t file, const char *path) {
    int rank = 0, is_float = 0, filtered = 0; uint64_t dims[8], stored = 0; size_t elem = 0; char err[256];
    if (vz_h5_dataset_info(file, path, &rank, dims, &is_float, &elem, &stored, &filtered, err, sizeof err) != VZ_H5_OK) {
        put(d, "d", 1); put_str(d, path); put_str(d, err); return;
    }
    uint64_t count = 1, bound = 1;
    for (int i = 0; i < rank; i++) {
        uint64_t dim = dims[i] ? dims[i] : 1;  // a zero cannot hide a huge dimension
        if (dims[i] > (UINT64_C(1) << 30) || bound > (UINT64_C(1) << 30) / dim) { bound = UINT64_MAX; break; }
        bound *= dim;
        count *= dims[i];
    }
    if (bound > (UINT64_C(1) << 30)) { put(d, "d", 1); put_str(d, path); put_str(d, "declared shape exceeds 4 GiB"); return; }
    uint64_t declared = count * (elem ? elem : 1);
    if (elem > 8 || (!filtered && count > 0 && (declared > d->file_size || stored < declared))) {
        char m[256];
        snprintf(m, sizeof m, "declared size %llu bytes exceeds what the file holds (%llu bytes)", (unsigned long long)declared,
                 (unsigned long long)(stored < d->file_size ? stored : d->file_size));
        put(d, "d", 1); put_str(d, path); put_str(d, m); return;
    }
    // All datasets together: no more than twice the file (float16 widened to float32) plus 64 MiB — a compressed
    // dataset or many links to one cannot make a small file expand into gigabytes.
    if (d->emitted + count * 4 > 2 * d->file_size + (UINT64_C(64) << 20)) {
        put(d, "d", 1); put_str(d, path); put_str(d, "the file's datasets together exceed twice its size"); return;
    }
    d->emitted += count * 4;
    float *buf = malloc(count ? count * 4 : 4);
    if (!buf) { put(d, "d", 1); put_str(d, path); put_str(d, "out of memory"); return; }
    if (vz_h5_read_floats(file, path, buf, count, err, sizeof err) != VZ_H5_OK) { free(buf); put(d, "d", 1); put_str(d, path); put_str(d, err); return; }
    put(d, "D", 1); put_str(d, path); put_u32(d, (uint32_t)rank);
    for (int i = 0; i < rank; i++) put_u64(d, dims[i]);
    put_u64(d, count * 4); put(d, buf, count * 4);
    free(buf);
}

static int dump_group(dump_t *d, hid_t file, const char *path, int depth) {
    if (depth > 32 || ++d->objects > (1u << 20)) return -1;
    put(d, "G", 1); put_str(d, path);
    dump_attrs(d, file, path);
    char *names = NULL; size_t size = 0, count = 0; char err[256];
    if (vz_h5_members(file, path, 1 << 20, 64 << 20, &names, &size, &count, err, sizeof err) != VZ_H5_OK) return 0;
    size_t at = 0;
    for (size_t i = 0; i < count && !d->failed; i++) {
        const char *name = names + at;
        at += strlen(name) + 1;
        size_t n = strlen(path) + strlen(name) + 2;
        if (n > 4000) continue;
        char child[4096];
        snprintf(child, sizeof child, "%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/", name);
        int kind = vz_h5_kind(file, child);
        if (kind == VZ_H5_GROUP) { if (dump_group(d, file, child, depth + 1) < 0) { free(names); return -1; } }
        else if (kind == VZ_H5_DATASET) { if (++d->objects > (1u << 20)) { free(names); return -1; } dump_dataset(d, file, child); }
    }
    free(names);
    return 0;
}

int vz_h5_dump(const char *path, const void *image, size_t image_size, uint64_t max_bytes, unsigned seconds,
               uint8_t **out, size_t *out_size, char *err, size_t errlen) {
    // The library is initialised here once (no file is touched), so each child starts with it ready.
    H5open();
    quiet();
    int fds[2];
    // Close-on-exec: a program another thread spawns meanwhile must not hold the write end (the read would never end).
    if (pipe2(fds, O_CLOEXEC) < 0) return say(err, errlen, VZ_H5_ERROR, "cannot create a pipe");
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return say(err, errlen, VZ_H5_ERROR, "cannot fork"); }
    if (pid == 0) {
        // The child: libhdf5 only, then _exit. Bounded in time and address space.
        close(fds[0]);
        // The parent's crash handlers (Swift's backtracer) must not run here: a crash just ends the child.
        int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGPIPE, SIGALRM};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        alarm(seconds);
        // Address space: what the child inherits, plus 1 GiB, plus 3× the file (its image, one tensor being read and
        // its float32 copy), at most 16 GiB — a corrupt small file cannot make libhdf5 take gigabytes.
        uint64_t inherited = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (statm) { unsigned long long pages = 0; if (fscanf(statm, "%llu", &pages) == 1) inherited = pages * (uint64_t)sysconf(_SC_PAGESIZE); fclose(statm); }
        uint64_t bytes = path ? 0 : image_size;
        if (path) { FILE *f = fopen(path, "rb"); if (f) { fseek(f, 0, SEEK_END); long n = ftell(f); bytes = n > 0 ? (uint64_t)n : 0; fclose(f); } }
        uint64_t budget = (UINT64_C(1) << 30) + 3 * bytes;
        if (budget > (UINT64_C(16) << 30)) budget = UINT64_C(16) << 30;
        uint64_t cap = inherited + budget;
        struct rlimit lim = {(rlim_t)cap, (rlim_t)cap}, none = {0, 0};
        setrlimit(RLIMIT_AS, &lim);
        setrlimit(RLIMIT_CORE, &none);  // a crash leaves no core file behind
        dump_t d = {fds[1], 0, 0, 0, 0};
        vz_h5_id file = -1;
        char e[512] = "";
        int rc = path ? vz_h5_open_file(path, &file, e, sizeof e) : vz_h5_open_image(image, image_size, &file, e, sizeof e);
        if (rc != VZ_H5_OK) { put(&d, "E", 1); put_str(&d, e); _exit(0); }
        d.file_size = bytes;
        if (dump_group(&d, (hid_t)file, "/", 0) < 0) { put(&d, "E", 1); put_str(&d, "the file holds too many groups or nests them too deeply"); }
        put(&d, "Z", 1);
        _exit(0);
    }
    close(fds[1]);
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    int over = 0;
    for (;;) {
        if (!buf) break;
        if (used == cap) {
            if ((uint64_t)cap * 2 > max_bytes + (1 << 16)) { over = 1; break; }
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) { over = 1; break; }
            buf = b; cap *= 2;
        }
        ssize_t r = read(fds[0], buf + used, cap - used);
        if (r < 0) { if (errno == EINTR) continue; break; }
        if (r == 0) break;
        used += (size_t)r;
    }
    close(fds[0]);
    if (over) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!buf) return say(err, errlen, VZ_H5_TOO_LARGE, "out of memory");
    if (over) { free(buf); return say(err, errlen, VZ_H5_TOO_LARGE, "the file's tensors exceed the size vizlab reads"); }
    if (WIFSIGNALED(status)) {
        free(buf);
        char m[160];
        if (WTERMSIG(status) == SIGALRM) snprintf(m, sizeof m, "libhdf5 took over %u s reading it: corrupt", seconds);
        else snprintf(m, sizeof m, "corrupt: libhdf5 crashed reading it (signal %d, in the reader's own process)", WTERMSIG(status));
        return say(err, errlen, VZ_H5_ERROR, m);
    }
    *out = buf; *out_size = used;
    return VZ_H5_OK;
}
