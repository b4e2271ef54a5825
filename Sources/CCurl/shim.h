// Typed wrappers for curl's variadic curl_easy_setopt/curl_easy_getinfo, which Swift cannot call.
#ifndef FAXGATE_CCURL_SHIM_H
#define FAXGATE_CCURL_SHIM_H
#include <curl/curl.h>
static inline CURLcode faxgate_curl_set_long(CURL *c, CURLoption o, long v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode faxgate_curl_set_string(CURL *c, CURLoption o, const char *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode faxgate_curl_set_pointer(CURL *c, CURLoption o, void *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode faxgate_curl_set_slist(CURL *c, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode faxgate_curl_set_read_function(CURL *c, size_t (*f)(char *, size_t, size_t, void *)) { return curl_easy_setopt(c, CURLOPT_READFUNCTION, f); }
static inline CURLcode faxgate_curl_set_debug_function(CURL *c, int (*f)(CURL *, curl_infotype, char *, size_t, void *)) { return curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, f); }
static inline CURLcode faxgate_curl_get_long(CURL *c, CURLINFO i, long *v) { return curl_easy_getinfo(c, i, v); }
// CURL_GLOBAL_DEFAULT is a compound macro Swift does not import.
static inline CURLcode faxgate_curl_global_init_default(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }
#endif
