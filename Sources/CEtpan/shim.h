// libetpan (IMAP intake, MIME parsing). Its pkg-config file carries a -specs= flag SwiftPM drops, so link directly.
#ifndef FAXGATE_CETPAN_SHIM_H
#define FAXGATE_CETPAN_SHIM_H
#include <libetpan/libetpan.h>

// UID SEARCH UNSEEN: libetpan only offers the 26-argument constructor for this key.
static inline struct mailimap_search_key *faxgate_etpan_search_key_unseen(void) {
    return mailimap_search_key_new(MAILIMAP_SEARCH_KEY_UNSEEN, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                   NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                                   NULL, NULL, NULL);
}

// Bytes already read from the socket but not yet parsed: poll() on the descriptor cannot see them.
static inline size_t faxgate_etpan_buffered_bytes(mailimap *session) {
    return session->imap_stream != NULL ? session->imap_stream->read_buffer_len : 0;
}
#endif
