#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vg_strbuf_init(vg_strbuf_t *sb)
{
    memset(sb, 0, sizeof(*sb));
}

void vg_strbuf_free(vg_strbuf_t *sb)
{
    free(sb->buf);
    memset(sb, 0, sizeof(*sb));
}

void vg_strbuf_reset(vg_strbuf_t *sb)
{
    sb->len = 0;
    sb->failed = false;
    if (sb->buf)
        sb->buf[0] = '\0';
}

bool vg_strbuf_failed(const vg_strbuf_t *sb)
{
    return sb->failed;
}

bool vg_strbuf_reserve(vg_strbuf_t *sb, size_t extra)
{
    if (sb->failed)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            sb->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *nb = realloc(sb->buf, cap);
    if (!nb) {
        sb->failed = true;
        return false;
    }
    sb->buf = nb;
    sb->cap = cap;
    return true;
}

void vg_strbuf_append(vg_strbuf_t *sb, const char *s, size_t n)
{
    if (!vg_strbuf_reserve(sb, n))
        return;
    if (n)
        memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void vg_strbuf_puts(vg_strbuf_t *sb, const char *s)
{
    vg_strbuf_append(sb, s, strlen(s));
}

void vg_strbuf_putc(vg_strbuf_t *sb, char c)
{
    vg_strbuf_append(sb, &c, 1);
}

void vg_strbuf_printf(vg_strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        vg_strbuf_append(sb, tmp, (size_t)n);
        return;
    }
    if (!vg_strbuf_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void vg_strbuf_json_string(vg_strbuf_t *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX. */
    if (!vg_strbuf_reserve(sb, n * 6 + 2))
        return;
    char *o = sb->buf + sb->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    sb->len = (size_t)(o - sb->buf);
    sb->buf[sb->len] = '\0';
}

char *vg_strbuf_detach(vg_strbuf_t *sb, size_t *len)
{
    char *b = sb->buf;
    if (len)
        *len = sb->len;
    if (!b)
        b = calloc(1, 1);
    memset(sb, 0, sizeof(*sb));
    return b;
}
