#include <tiffio.h>
#include <stdarg.h>
// libtiff reports problems through variadic handlers, which Swift cannot implement;
// these C helpers format the message into a thread-local buffer Swift can read.
static _Thread_local char ctiff_last_error[512];
static void ctiff_error_handler(const char *module, const char *fmt, va_list ap) {
    vsnprintf(ctiff_last_error, sizeof ctiff_last_error, fmt, ap);
}
static void ctiff_warning_handler(const char *module, const char *fmt, va_list ap) { }
static inline void ctiff_install_handlers(void) {
    TIFFSetErrorHandler(ctiff_error_handler);
    TIFFSetWarningHandler(ctiff_warning_handler);
}
static inline const char *ctiff_last_error_message(void) { return ctiff_last_error; }
static inline void ctiff_clear_error(void) { ctiff_last_error[0] = 0; }
