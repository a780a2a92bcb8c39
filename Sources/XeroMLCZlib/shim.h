#ifndef XEROML_CZLIB_SHIM_H
#define XEROML_CZLIB_SHIM_H

#include <zlib.h>

// deflateInit2 and inflateInit2 are macros that Swift cannot call; these call them.

/// Starts a gzip stream (window bits 15 + 16) at `level`.
static inline int xeroml_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/// Starts reading a gzip stream (window bits 15 + 16: gzip only).
static inline int xeroml_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}

#endif
