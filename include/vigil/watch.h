/* Watching the rule files (inotify), so that an edit reloads the rules the
 * way SIGHUP does. The watcher only says "the files changed and have now
 * been quiet for a while"; reloading (and refusing a broken edit) is the
 * caller's business.
 *
 * Each path is what rules.paths holds: a folder is watched with its
 * subfolders (list files often live in one), a file through its folder, so
 * that an editor's save by rename-over, a delete and a re-create are all
 * seen. Editors' scratch files (*~, .*.swp, 4913, .#*, *.tmp) are ignored.
 * A folder that disappears is watched again once it is back. Files outside
 * these folders that a rule refers to are not watched: send SIGHUP after
 * changing one. */
#ifndef VIGIL_WATCH_H
#define VIGIL_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vg_watch vg_watch_t;

/* What vg_watch_poll saw since the last reload it asked for. */
typedef struct vg_watch_change {
    unsigned events; /* file events counted (creates, writes, renames, deletes) */
    char last[512];  /* the last file that changed */
} vg_watch_change_t;

/* Starts watching paths[0..n). quiet_ms is how long nothing may change
 * before vg_watch_poll reports the change. Returns NULL with a sentence
 * in err when inotify is unavailable or a folder cannot be watched. */
vg_watch_t *vg_watch_new(const char *const *paths, size_t n, unsigned quiet_ms, char *err,
                         size_t err_size);

/* The inotify descriptor, readable when events are waiting (for poll(2)
 * users; vg_watch_poll never blocks either way). */
int vg_watch_fd(const vg_watch_t *w);

/* Takes in the waiting events without blocking. Returns true, once, when
 * there were changes and none for quiet_ms up to now_ms (a monotonic
 * clock in milliseconds); *what (may be NULL) then describes them. Call
 * it regularly, e.g. from a main loop tick. */
bool vg_watch_poll(vg_watch_t *w, uint64_t now_ms, vg_watch_change_t *what);

/* Accepts NULL. */
void vg_watch_destroy(vg_watch_t *w);

#endif
