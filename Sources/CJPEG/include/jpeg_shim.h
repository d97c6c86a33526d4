#ifndef VIZLAB_JPEG_SHIM_H
#define VIZLAB_JPEG_SHIM_H
#include <stddef.h>
#endif
