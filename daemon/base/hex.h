/* Hexadecimal digits, for the escapes of JSON (\uXXXX) and YAML (\xXX,
 * \uXXXX, \UXXXXXXXX): the one decoder both parsers use. */
#ifndef VIGIL_HEX_H
#define VIGIL_HEX_H

#include <stddef.h>

/* The value of one hex digit, or -1. */
static inline int vg_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The value of the n hex digits at s (n <= 8), or -1 when one is not. */
static inline long vg_hex_value(const char *s, size_t n)
{
    long v = 0;
    for (size_t k = 0; k < n; k++) {
        int h = vg_hex_digit(s[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

#endif
