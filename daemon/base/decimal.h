/* The syntax of a decimal number, as both the YAML loader (a plain scalar
 * that is a float) and the field comparisons (a string that is a number)
 * accept it: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 * No spaces, hex, inf or nan. */
#ifndef VIGIL_DECIMAL_H
#define VIGIL_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>

/* The number of ASCII digits from s[*i] on (before len); *i moves past them. */
static inline size_t vg_decimal_digits(const char *s, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i - start;
}

/* True when all of s[0..len) is a decimal number. */
static inline bool vg_decimal_syntax(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t digits = vg_decimal_digits(s, len, &i);
    if (i < len && s[i] == '.') {
        i++;
        digits += vg_decimal_digits(s, len, &i);
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        if (vg_decimal_digits(s, len, &i) == 0)
            return false;
    }
    return i == len;
}

#endif
