// Typed wrappers for libtiff's variadic TIFFSetField/TIFFGetField, which Swift cannot call.
#ifndef FAXGATE_CTIFF_SHIM_H
#define FAXGATE_CTIFF_SHIM_H
#include <tiffio.h>
#include <stdint.h>
static inline int faxgate_tiff_set_u16(TIFF *t, uint32_t tag, uint16_t v) { return TIFFSetField(t, tag, v); }
static inline int faxgate_tiff_set_u32(TIFF *t, uint32_t tag, uint32_t v) { return TIFFSetField(t, tag, v); }
static inline int faxgate_tiff_set_float(TIFF *t, uint32_t tag, float v) { return TIFFSetField(t, tag, (double)v); }
static inline int faxgate_tiff_set_string(TIFF *t, uint32_t tag, const char *v) { return TIFFSetField(t, tag, v); }
static inline int faxgate_tiff_set_page(TIFF *t, uint16_t page, uint16_t count) { return TIFFSetField(t, TIFFTAG_PAGENUMBER, page, count); }
static inline int faxgate_tiff_get_u16(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetField(t, tag, v); }
static inline int faxgate_tiff_get_u32(TIFF *t, uint32_t tag, uint32_t *v) { return TIFFGetField(t, tag, v); }
static inline int faxgate_tiff_get_float(TIFF *t, uint32_t tag, float *v) { return TIFFGetField(t, tag, v); }
static inline int faxgate_tiff_get_u16_defaulted(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetFieldDefaulted(t, tag, v); }
// libtiff prints warnings to stderr by default; the gateway routes them through its own logger.
static inline void faxgate_tiff_silence(void) { TIFFSetWarningHandler(NULL); TIFFSetErrorHandler(NULL); }
#endif
