// libetpan (IMAP intake, MIME parsing). Its pkg-config file carries a -specs= flag SwiftPM drops, so link directly.
#ifndef FAXGATE_CETPAN_SHIM_H
#define FAXGATE_CETPAN_SHIM_H
#include <libetpan/libetpan.h>
#endif
