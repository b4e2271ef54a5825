// libarchive (encrypted support snapshots).
#ifndef FAXGATE_CARCHIVE_SHIM_H
#define FAXGATE_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
