// Debian's libspandsp-dev 0.0.6: the public API only.
#ifndef FAXGATE_CSPANDSP_SHIM_H
#define FAXGATE_CSPANDSP_SHIM_H
#include <stdint.h>
#include <tiffio.h>
#include <spandsp.h>
#endif
