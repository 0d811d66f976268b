/* Rule-file watcher (include/vigil/watch.h). inotify watches folders, not
 * files: an editor that saves by writing a new file and renaming it over
 * the old one would otherwise leave a watch on a deleted inode. */
#include "vigil/watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Subfolders below a configured folder that are watched too. */
#define MAX_DEPTH 3
/* Watches one watcher may hold; a rules folder has a handful. */
#define MAX_ENTRIES 512
/* How often a vanished folder is looked for again. */
#define RETRY_MS 1000

#define DIR_MASK                                                                           \
    (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO |     \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct wentry {
    int wd;      /* -1 while the folder is missing */
    char *dir;   /* the folder watched */
    char *only;  /* NULL: every name in dir; otherwise just this one */
    unsigned depth;
    bool root; /* from the paths given (looked for again when gone) */
} wentry_t;

struct vg_watch {
    int fd;
    unsigned quiet_ms;
    wentry_t *e;
    size_t n;
    bool pending;
    uint64_t last_event, last_retry;
    vg_watch_change_t change;
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Files editors write next to the one being edited. */
static bool scratch_name(const char *name)
{
    return ends_with(name, "~") || ends_with(name, ".swp") || ends_with(name, ".swx") ||
           ends_with(name, ".swo") || ends_with(name, ".tmp") || ends_with(name, ".kate-swp") ||
           strcmp(name, "4913") == 0 || strncmp(name, ".#", 2) == 0 ||
           strncmp(name, ".goutputstream-", 15) == 0;
}

static int add_entry(vg_watch_t *w, const char *dir, const char *only, unsigned depth, bool root)
{
    if (w->n >= MAX_ENTRIES)
        return -1;
    wentry_t *e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    e->wd = -1;
    e->dir = strdup(dir);
    e->only = only ? strdup(only) : NULL;
    e->depth = depth;
    e->root = root;
    if (!e->dir || (only && !e->only)) {
        free(e->dir);
        free(e->only);
        return -1;
    }
    w->n++;
    return 0;
}

static void remove_entry(vg_watch_t *w, size_t i)
{
    free(w->e[i].dir);
    free(w->e[i].only);
    w->e[i] = w->e[--w->n];
}

static bool watching_dir(const vg_watch_t *w, const char *dir)
{
    for (size_t i = 0; i < w->n; i++)
        if (!w->e[i].only && w->e[i].wd >= 0 && strcmp(w->e[i].dir, dir) == 0)
            return true;
    return false;
}

/* Watches dir's subfolders below depth (not following links, skipping
 * hidden ones). Best effort: a subfolder that cannot be watched is left. */
static void add_subfolders(vg_watch_t *w, const char *dir, unsigned depth)
{
    if (depth >= MAX_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        struct stat st;
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub) ||
            lstat(sub, &st) != 0 || !S_ISDIR(st.st_mode) || watching_dir(w, sub))
            continue;
        if (add_entry(w, sub, NULL, depth + 1, false) != 0)
            break;
        wentry_t *e = &w->e[w->n - 1];
        e->wd = inotify_add_watch(w->fd, sub, DIR_MASK);
        if (e->wd < 0) {
            remove_entry(w, w->n - 1);
            continue;
        }
        add_subfolders(w, sub, depth + 1);
    }
    closedir(d);
}

/* (Re)arms entry i; returns the inotify_add_watch result. */
static int arm(vg_watch_t *w, size_t i)
{
    wentry_t *e = &w->e[i];
    e->wd = inotify_add_watch(w->fd, e->dir, DIR_MASK);
    if (e->wd >= 0 && !e->only) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", e->dir);
        add_subfolders(w, dir, e->depth);
    }
    return e->wd;
}

vg_watch_t *vg_watch_new(const char *const *paths, size_t n, unsigned quiet_ms, char *err,
                         size_t err_size)
{
    vg_watch_t *w = calloc(1, sizeof(*w));
    if (!w || !(w->e = calloc(MAX_ENTRIES, sizeof(*w->e)))) {
        snprintf(err, err_size, "out of memory setting up the rule-file watcher");
        free(w);
        return NULL;
    }
    w->fd = -1;
    w->quiet_ms = quiet_ms;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, err_size, "cannot watch the rule files: inotify: %s", strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (snprintf(path, sizeof(path), "%s", paths[i]) >= (int)sizeof(path)) {
            snprintf(err, err_size, "cannot watch %s: the path is too long", paths[i]);
            goto fail;
        }
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
            path[--len] = '\0';
        int rc;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = add_entry(w, path, NULL, 0, true);
        } else {
            /* A file: watch its folder for this one name. */
            char *slash = strrchr(path, '/');
            const char *name = slash ? slash + 1 : path;
            char dir[PATH_MAX];
            if (!slash)
                snprintf(dir, sizeof(dir), ".");
            else if (slash == path)
                snprintf(dir, sizeof(dir), "/");
            else
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
            rc = add_entry(w, dir, name, 0, true);
        }
        if (rc != 0) {
            snprintf(err, err_size, "cannot watch %s: too many folders or out of memory",
                     paths[i]);
            goto fail;
        }
        if (arm(w, w->n - 1) < 0) {
            int e = errno;
            snprintf(err, err_size, "cannot watch %s: %s%s", w->e[w->n - 1].dir, strerror(e),
                     e == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
            goto fail;
        }
    }
    return w;

fail:
    vg_watch_destroy(w);
    return NULL;
}

int vg_watch_fd(const vg_watch_t *w)
{
    return w ? w->fd : -1;
}

static void note_change(vg_watch_t *w, uint64_t now, const char *dir, const char *name)
{
    w->pending = true;
    w->last_event = now;
    w->change.events++;
    if (name && *name)
        snprintf(w->change.last, sizeof(w->change.last), "%s/%s", dir, name);
    else
        snprintf(w->change.last, sizeof(w->change.last), "%s", dir);
}

/* Forgets the watches of dir's subfolders: after dir moved away they
 * watch the old place; after it came back they are found again. */
static void drop_below(vg_watch_t *w, const char *dir)
{
    size_t n = strlen(dir);
    for (size_t i = 0; i < w->n;) {
        wentry_t *e = &w->e[i];
        if (!e->root && strncmp(e->dir, dir, n) == 0 && e->dir[n] == '/') {
            if (e->wd >= 0)
                inotify_rm_watch(w->fd, e->wd);
            remove_entry(w, i);
        } else {
            i++;
        }
    }
}

static void handle(vg_watch_t *w, const struct inotify_event *ev, uint64_t now)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        /* Events were lost: assume the worst. */
        note_change(w, now, "(many files)", NULL);
        return;
    }
    const char *name = ev->len ? ev->name : "";
    for (size_t i = 0; i < w->n;) {
        wentry_t *e = &w->e[i];
        if (e->wd != ev->wd) {
            i++;
            continue;
        }
        if (ev->mask & IN_IGNORED) {
            /* The folder went away (or was renamed): a configured one is
             * looked for again, a subfolder is found again by its parent. */
            note_change(w, now, e->dir, NULL);
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%s", e->dir);
            if (e->root) {
                e->wd = -1;
            } else {
                remove_entry(w, i);
            }
            drop_below(w, dir);
            i = 0; /* entries moved; the rest no longer carry this wd */
            continue;
        }
        if (ev->mask & IN_MOVE_SELF) {
            /* The watch would follow the folder to its new name. */
            inotify_rm_watch(w->fd, e->wd);
            i++;
            continue;
        }
        if (ev->mask & IN_DELETE_SELF) {
            i++;
            continue; /* IN_IGNORED follows */
        }
        bool relevant = *name && !scratch_name(name) && (!e->only || strcmp(e->only, name) == 0);
        if (relevant) {
            if (!e->only && (ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
                name[0] != '.') {
                char sub[PATH_MAX];
                snprintf(sub, sizeof(sub), "%s/%s", e->dir, name);
                unsigned depth = e->depth;
                if (depth + 1 <= MAX_DEPTH && !watching_dir(w, sub) &&
                    add_entry(w, sub, NULL, depth + 1, false) == 0 && arm(w, w->n - 1) < 0)
                    remove_entry(w, w->n - 1);
                e = &w->e[i]; /* the array did not move, but be plain about it */
            }
            note_change(w, now, e->dir, name);
        }
        i++;
    }
}

bool vg_watch_poll(vg_watch_t *w, uint64_t now_ms, vg_watch_change_t *what)
{
    if (!w)
        return false;
    /* Aligned as inotify wants; several events per read. */
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(w->fd, buf, sizeof(buf));
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            break;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            handle(w, ev, now_ms);
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    /* A configured folder that vanished: is it back? Its return is a
     * change too (new content, most likely). */
    if (now_ms - w->last_retry >= RETRY_MS) {
        w->last_retry = now_ms;
        for (size_t i = 0; i < w->n; i++)
            if (w->e[i].root && w->e[i].wd < 0 && arm(w, i) >= 0)
                note_change(w, now_ms, w->e[i].dir, w->e[i].only);
    }
    if (!w->pending || now_ms - w->last_event < w->quiet_ms)
        return false;
    if (what)
        *what = w->change;
    w->pending = false;
    memset(&w->change, 0, sizeof(w->change));
    return true;
}

void vg_watch_destroy(vg_watch_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].dir);
        free(w->e[i].only);
    }
    free(w->e);
    free(w);
}
