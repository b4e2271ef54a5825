// Debian's libmp3lame-dev: MP3 encoding of voicemails (the compressed attachment).
#include <lame/lame.h>
