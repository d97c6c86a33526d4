// See include/vz_hnsw.h. hnswlib is used unmodified; this file only adapts it to C and guards its file reader.
#include "vz_hnsw.h"

#include <hnswlib/hnswlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <vector>

struct vz_hnsw {
    int space_kind;
    size_t dim;
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

namespace {

void set_error(char *err, size_t errlen, const char *message) {
    if (err && errlen) { snprintf(err, errlen, "%s", message); }
}

std::unique_ptr<hnswlib::SpaceInterface<float>> make_space(int kind, size_t dim) {
    if (kind == VZ_HNSW_L2) return std::unique_ptr<hnswlib::SpaceInterface<float>>(new hnswlib::L2Space(dim));
    return std::unique_ptr<hnswlib::SpaceInterface<float>>(new hnswlib::InnerProductSpace(dim));
}

// Runs f, turning any exception into an error code and message.
template <typename F> int guarded(char *err, size_t errlen, F f) {
    try {
        return f();
    } catch (const std::bad_alloc &) {
        set_error(err, errlen, "out of memory");
    } catch (const std::exception &e) {
        set_error(err, errlen, e.what());
    } catch (...) {
        set_error(err, errlen, "unknown C++ exception in hnswlib");
    }
    return VZ_HNSW_ERROR;
}

template <typename T> bool read_pod(const uint8_t *bytes, size_t size, size_t &pos, T &out) {
    if (size - pos < sizeof(T) || pos > size) return false;
    memcpy(&out, bytes + pos, sizeof(T));
    pos += sizeof(T);
    return true;
}

// A link list: uint16 count (+ a flags byte and a spare byte), then `capacity` uint32 neighbour ids.
bool check_links(const uint8_t *list, size_t capacity, size_t count_elements, bool level0) {
    uint16_t n;
    memcpy(&n, list, 2);
    if (n > capacity) return false;
    if (!level0 && list[2] != 0) return false;
    if (level0 && (list[2] & ~hnswlib::HierarchicalNSW<float>::DELETE_MARK) != 0) return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        memcpy(&id, list + 4 + 4 * i, 4);
        if (id >= count_elements) return false;
    }
    return true;
}

}  // namespace

extern "C" {

int vz_hnsw_validate(const uint8_t *bytes, size_t size, size_t dim, char *err, size_t errlen) {
    size_t pos = 0;
    size_t offset_level0, max_elements, count, size_per_element, label_offset, offset_data, maxM, maxM0, M, efc;
    int max_level;
    uint32_t enterpoint;
    double mult;
    bool ok = read_pod(bytes, size, pos, offset_level0) && read_pod(bytes, size, pos, max_elements) &&
              read_pod(bytes, size, pos, count) && read_pod(bytes, size, pos, size_per_element) &&
              read_pod(bytes, size, pos, label_offset) && read_pod(bytes, size, pos, offset_data) &&
              read_pod(bytes, size, pos, max_level) && read_pod(bytes, size, pos, enterpoint) &&
              read_pod(bytes, size, pos, maxM) && read_pod(bytes, size, pos, maxM0) && read_pod(bytes, size, pos, M) &&
              read_pod(bytes, size, pos, mult) && read_pod(bytes, size, pos, efc);
    if (!ok) { set_error(err, errlen, "shorter than an hnswlib header"); return VZ_HNSW_CORRUPT; }
    if (dim == 0 || dim > (1u << 20)) { set_error(err, errlen, "dimension out of range"); return VZ_HNSW_CORRUPT; }
    if (offset_level0 != 0 || M < 2 || M > 4096 || maxM != M || maxM0 != 2 * M || efc == 0 || efc > (1u << 20) ||
        !std::isfinite(mult) || mult <= 0 || mult > 10) {
        set_error(err, errlen, "hnswlib header has impossible parameters");
        return VZ_HNSW_CORRUPT;
    }
    const size_t links0 = maxM0 * sizeof(uint32_t) + sizeof(uint32_t);
    const size_t links = maxM * sizeof(uint32_t) + sizeof(uint32_t);
    const size_t data_size = dim * sizeof(float);
    if (offset_data != links0 || label_offset != links0 + data_size || size_per_element != label_offset + sizeof(size_t)) {
        set_error(err, errlen, "hnswlib header does not match the vector dimension");
        return VZ_HNSW_CORRUPT;
    }
    if (count > max_elements || count > 0xFFFFFFFFull || (count > 0 && size_per_element > (size - pos) / count)) {
        set_error(err, errlen, "element count exceeds the file");
        return VZ_HNSW_CORRUPT;
    }
    const uint8_t *level0 = bytes + pos;
    for (size_t i = 0; i < count; i++) {
        if (!check_links(level0 + i * size_per_element, maxM0, count, true)) {
            set_error(err, errlen, "a level-0 link list is out of range");
            return VZ_HNSW_CORRUPT;
        }
        for (size_t j = 0; j < dim; j++) {
            float v;
            memcpy(&v, level0 + i * size_per_element + offset_data + 4 * j, 4);
            if (!std::isfinite(v)) { set_error(err, errlen, "a stored vector is not finite"); return VZ_HNSW_CORRUPT; }
        }
    }
    pos += count * size_per_element;
    int top_level = -1;
    int enter_level = -1;
    for (size_t i = 0; i < count; i++) {
        uint32_t list_size;
        if (!read_pod(bytes, size, pos, list_size)) { set_error(err, errlen, "truncated link lists"); return VZ_HNSW_CORRUPT; }
        if (list_size % links != 0 || list_size / links > 64 || list_size > size - pos) {
            set_error(err, errlen, "an upper-level link list is malformed");
            return VZ_HNSW_CORRUPT;
        }
        const int levels = (int)(list_size / links);
        for (int l = 0; l < levels; l++) {
            if (!check_links(bytes + pos + l * links, maxM, count, false)) {
                set_error(err, errlen, "an upper-level link list is out of range");
                return VZ_HNSW_CORRUPT;
            }
        }
        pos += list_size;
        if (levels > top_level) top_level = levels;
        if (i == enterpoint) enter_level = levels;
    }
    if (pos != size) { set_error(err, errlen, "trailing bytes after the link lists"); return VZ_HNSW_CORRUPT; }
    if (count > 0 && (enterpoint >= count || enter_level != max_level || max_level != top_level)) {
        set_error(err, errlen, "the entry point is not the top element");
        return VZ_HNSW_CORRUPT;
    }
    if (count == 0 && max_level != -1) { set_error(err, errlen, "an empty index with levels"); return VZ_HNSW_CORRUPT; }
    return VZ_HNSW_OK;
}

int vz_hnsw_new(int space, size_t dim, size_t capacity, size_t M, size_t ef_construction, size_t seed, vz_hnsw **out,
                char *err, size_t errlen) {
    *out = nullptr;
    return guarded(err, errlen, [&] {
        std::unique_ptr<vz_hnsw> h(new vz_hnsw());
        h->space_kind = space;
        h->dim = dim;
        h->space = make_space(space, dim);
        h->index.reset(new hnswlib::HierarchicalNSW<float>(h->space.get(), capacity < 1 ? 1 : capacity, M, ef_construction, seed));
        *out = h.release();
        return VZ_HNSW_OK;
    });
}

int vz_hnsw_load(const char *path, int space, size_t dim, size_t capacity, vz_hnsw **out, char *err, size_t errlen) {
    *out = nullptr;
    return guarded(err, errlen, [&] {
        FILE *f = fopen(path, "rb");
        if (!f) { set_error(err, errlen, "cannot open"); return (int)VZ_HNSW_ERROR; }
        std::vector<uint8_t> bytes;
        uint8_t buffer[1 << 16];
        size_t n;
        while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) bytes.insert(bytes.end(), buffer, buffer + n);
        fclose(f);
        int rc = vz_hnsw_validate(bytes.data(), bytes.size(), dim, err, errlen);
        if (rc != VZ_HNSW_OK) return rc;
        size_t count;
        memcpy(&count, bytes.data() + 2 * sizeof(size_t), sizeof(size_t));
        std::unique_ptr<vz_hnsw> h(new vz_hnsw());
        h->space_kind = space;
        h->dim = dim;
        h->space = make_space(space, dim);
        h->index.reset(new hnswlib::HierarchicalNSW<float>(h->space.get()));
        // hnswlib 0.6.2's loading constructors leave num_deleted_ uninitialized and loadIndex adds to it.
        h->index->num_deleted_ = 0;
        h->index->metric_distance_computations = 0;
        h->index->metric_hops = 0;
        h->index->loadIndex(path, h->space.get(), capacity > count ? capacity : (count < 1 ? 1 : count));
        if (h->index->cur_element_count != count) { set_error(err, errlen, "the file changed while it was read"); return (int)VZ_HNSW_CORRUPT; }
        *out = h.release();
        return (int)VZ_HNSW_OK;
    });
}

void vz_hnsw_free(vz_hnsw *h) { delete h; }

int vz_hnsw_add(vz_hnsw *h, const float *vectors, const uint64_t *labels, size_t n, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        auto &index = *h->index;
        const size_t needed = index.cur_element_count + n;
        if (needed > index.max_elements_) index.resizeIndex(std::max(needed, index.max_elements_ + index.max_elements_ / 2));
        for (size_t i = 0; i < n; i++) index.addPoint(vectors + i * h->dim, (hnswlib::labeltype)labels[i]);
        return VZ_HNSW_OK;
    });
}

int vz_hnsw_mark_deleted(vz_hnsw *h, uint64_t label, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        h->index->markDelete((hnswlib::labeltype)label);
        return VZ_HNSW_OK;
    });
}

void vz_hnsw_set_ef(vz_hnsw *h, size_t ef) { h->index->setEf(ef); }

void vz_hnsw_reseed(vz_hnsw *h, size_t seed) { h->index->level_generator_.seed(seed); }

int vz_hnsw_search(const vz_hnsw *h, const float *queries, size_t nq, size_t k, uint64_t *labels, float *distances,
                   char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        for (size_t q = 0; q < nq; q++) {
            auto result = h->index->searchKnn(queries + q * h->dim, k);
            size_t found = result.size();
            for (size_t j = found; j < k; j++) {
                labels[q * k + j] = UINT64_MAX;
                distances[q * k + j] = std::numeric_limits<float>::infinity();
            }
            // The queue pops the farthest first.
            for (size_t j = found; j-- > 0;) {
                labels[q * k + j] = (uint64_t)result.top().second;
                distances[q * k + j] = result.top().first;
                result.pop();
            }
        }
        return VZ_HNSW_OK;
    });
}

int vz_hnsw_save(const vz_hnsw *h, const char *path, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        h->index->saveIndex(path);
        return VZ_HNSW_OK;
    });
}

size_t vz_hnsw_count(const vz_hnsw *h) { return h->index->cur_element_count; }
size_t vz_hnsw_deleted(const vz_hnsw *h) { return h->index->num_deleted_; }
size_t vz_hnsw_dim(const vz_hnsw *h) { return h->dim; }
size_t vz_hnsw_M(const vz_hnsw *h) { return h->index->M_; }
size_t vz_hnsw_ef_construction(const vz_hnsw *h) { return h->index->ef_construction_; }

size_t vz_hnsw_labels(const vz_hnsw *h, uint64_t *labels, uint8_t *deleted, size_t cap) {
    const auto &index = *h->index;
    size_t n = std::min(cap, (size_t)index.cur_element_count);
    for (size_t i = 0; i < n; i++) {
        labels[i] = (uint64_t)index.getExternalLabel((hnswlib::tableint)i);
        deleted[i] = index.isMarkedDeleted((hnswlib::tableint)i) ? 1 : 0;
    }
    return n;
}

void vz_hnsw_normalize(float *x, size_t dim) {
    float norm = 0.0f;
    for (size_t i = 0; i < dim; i++) norm += x[i] * x[i];
    norm = 1.0f / (sqrtf(norm) + 1e-30f);
    for (size_t i = 0; i < dim; i++) x[i] = x[i] * norm;
}

}  // extern "C"
