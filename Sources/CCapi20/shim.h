// Thin shim over Debian's libcapi20. Only what Swift cannot call directly lives here.
#ifndef FAXGATE_CCAPI20_SHIM_H
#define FAXGATE_CCAPI20_SHIM_H
#include <capi20.h>
#include <capiutils.h>
#endif
