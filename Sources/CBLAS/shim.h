#include <cblas.h>
// OpenBLAS extension: lets the engine choose how many threads sgemm uses.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// glibc's mallopt (not exported by Swift's Glibc module): the engine keeps freed activations in the heap.
#include <malloc.h>
