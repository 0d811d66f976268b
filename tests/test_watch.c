/* The rule-file watcher: what counts as a change (create, write, rename
 * over, delete, subfolders, a folder that goes and comes back), what does
 * not (editors' scratch files, other files next to a watched file), and
 * the quiet period. inotify queues an event during the system call that
 * causes it, so no test sleeps: time is the now_ms handed to the poll. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/watch.h"

static char root[256];

static void path_of(char *out, size_t size, const char *rel)
{
    snprintf(out, size, "%s/%s", root, rel);
}

static void write_rel(const char *rel, const char *text)
{
    char p[512];
    path_of(p, sizeof(p), rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void append_rel(const char *rel, const char *text)
{
    char p[512];
    path_of(p, sizeof(p), rel);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rename_rel(const char *from, const char *to)
{
    char a[512], b[512];
    path_of(a, sizeof(a), from);
    path_of(b, sizeof(b), to);
    assert_int_equal(rename(a, b), 0);
}

static void unlink_rel(const char *rel)
{
    char p[512];
    path_of(p, sizeof(p), rel);
    assert_int_equal(unlink(p), 0);
}

static void mkdir_rel(const char *rel)
{
    char p[512];
    path_of(p, sizeof(p), rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void rm_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/vigil-watch-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[512];
    snprintf(p, sizeof(p), "%s/rules.d", root);
    if (mkdir(p, 0755) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s/rules.d/lists", root);
    if (mkdir(p, 0755) != 0)
        return -1;
    write_rel("rules.d/a.yaml", "rules: []\n");
    write_rel("rules.d/lists/names.txt", "ACME\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(root);
    return 0;
}

static vg_watch_t *watch_rel(const char *rel, unsigned quiet_ms)
{
    char p[512], err[256] = "";
    path_of(p, sizeof(p), rel);
    const char *paths[] = {p};
    vg_watch_t *w = vg_watch_new(paths, 1, quiet_ms, err, sizeof(err));
    if (!w)
        fail_msg("vg_watch_new(%s): %s", p, err);
    assert_true(vg_watch_fd(w) >= 0);
    return w;
}

/* Polls at now: a change must be reported, naming a file ending in
 * last_suffix (when not NULL). */
static void expect_change(vg_watch_t *w, uint64_t now, const char *last_suffix)
{
    vg_watch_change_t c;
    if (!vg_watch_poll(w, now, &c))
        fail_msg("expected a change reported at %llu ms", (unsigned long long)now);
    assert_true(c.events >= 1);
    if (last_suffix) {
        size_t n = strlen(c.last), m = strlen(last_suffix);
        if (n < m || strcmp(c.last + n - m, last_suffix) != 0)
            fail_msg("last change '%s', expected one ending in '%s'", c.last, last_suffix);
    }
}

static void expect_quiet(vg_watch_t *w, uint64_t now)
{
    vg_watch_change_t c;
    if (vg_watch_poll(w, now, &c))
        fail_msg("unexpected change at %llu ms: %u events, last %s", (unsigned long long)now,
                 c.events, c.last);
}

/* ---- a folder ----------------------------------------------------------- */

static void test_folder_changes(void **state)
{
    (void)state;
    vg_watch_t *w = watch_rel("rules.d", 200);
    expect_quiet(w, 0);

    /* a new file: reported once the folder has been quiet for 200 ms */
    write_rel("rules.d/b.yaml", "rules: []\n");
    expect_quiet(w, 10);
    expect_quiet(w, 209);
    expect_change(w, 210, "/rules.d/b.yaml");
    expect_quiet(w, 1000); /* once */

    /* a write to an existing file */
    append_rel("rules.d/a.yaml", "# edited\n");
    expect_quiet(w, 1100);
    expect_change(w, 1300, "/rules.d/a.yaml");

    /* an editor's save: write a new file, rename it over the old one;
     * and again, since the first rename replaced the inode */
    for (int i = 0; i < 2; i++) {
        uint64_t t = 2000 + 1000 * (uint64_t)i;
        write_rel("rules.d/a.yaml.new", "rules: []  # saved\n");
        rename_rel("rules.d/a.yaml.new", "rules.d/a.yaml");
        expect_quiet(w, t);
        expect_change(w, t + 200, "/rules.d/a.yaml");
    }

    /* a delete */
    unlink_rel("rules.d/b.yaml");
    expect_quiet(w, 4000);
    expect_change(w, 4200, "/rules.d/b.yaml");

    /* a file in a subfolder (lists are read from there) */
    append_rel("rules.d/lists/names.txt", "ZETA\n");
    expect_quiet(w, 5000);
    expect_change(w, 5200, "/lists/names.txt");
    vg_watch_destroy(w);
}

/* Changes that keep coming hold the report back until they stop. */
static void test_quiet_period(void **state)
{
    (void)state;
    vg_watch_t *w = watch_rel("rules.d", 500);
    uint64_t t = 0;
    for (int i = 0; i < 10; i++, t += 300) {
        append_rel("rules.d/a.yaml", "# typing\n");
        expect_quiet(w, t);
    }
    /* the last write was seen at t - 300 */
    expect_quiet(w, t - 300 + 499);
    vg_watch_change_t c;
    assert_true(vg_watch_poll(w, t - 300 + 500, &c));
    assert_true(c.events >= 10);
    vg_watch_destroy(w);
}

static void test_scratch_files_ignored(void **state)
{
    (void)state;
    vg_watch_t *w = watch_rel("rules.d", 100);
    write_rel("rules.d/a.yaml~", "backup\n");
    write_rel("rules.d/.a.yaml.swp", "vim\n");
    write_rel("rules.d/4913", "vim probe\n");
    write_rel("rules.d/.#a.yaml", "emacs lock\n");
    write_rel("rules.d/a.yaml.tmp", "half written\n");
    unlink_rel("rules.d/4913");
    expect_quiet(w, 0);
    expect_quiet(w, 10000);
    /* but the rename of the scratch file onto the rule file counts */
    rename_rel("rules.d/a.yaml.tmp", "rules.d/a.yaml");
    expect_quiet(w, 10050);
    expect_change(w, 10150, "/rules.d/a.yaml");
    vg_watch_destroy(w);
}

/* A new subfolder is watched from then on. */
static void test_new_subfolder(void **state)
{
    (void)state;
    vg_watch_t *w = watch_rel("rules.d", 100);
    mkdir_rel("rules.d/more");
    expect_quiet(w, 0);
    expect_change(w, 100, "/rules.d/more");
    write_rel("rules.d/more/x.txt", "x\n");
    expect_quiet(w, 150);
    expect_change(w, 250, "/more/x.txt");
    vg_watch_destroy(w);
}

/* The folder itself removed and put back (a deploy that replaces it). */
static void test_folder_replaced(void **state)
{
    (void)state;
    char dir[512], old[512];
    path_of(dir, sizeof(dir), "rules.d");
    path_of(old, sizeof(old), "rules.d.old");
    vg_watch_t *w = watch_rel("rules.d", 100);
    assert_int_equal(rename(dir, old), 0);
    expect_quiet(w, 100);
    expect_change(w, 200, NULL);
    /* renamed away: changes there (subfolders included) are no longer ours */
    write_rel("rules.d.old/c.yaml", "rules: []\n");
    append_rel("rules.d.old/lists/names.txt", "old\n");
    expect_quiet(w, 300);
    expect_quiet(w, 900);
    /* back, with new content: the watcher looks again once a second */
    mkdir_rel("rules.d");
    mkdir_rel("rules.d/lists");
    write_rel("rules.d/a.yaml", "rules: []\n");
    expect_quiet(w, 999);
    expect_quiet(w, 1000); /* found again at 1000: a change, reported after the quiet */
    expect_change(w, 1100, "/rules.d");
    write_rel("rules.d/d.yaml", "rules: []\n");
    expect_quiet(w, 1200);
    expect_change(w, 1300, "/rules.d/d.yaml");
    /* its new subfolder is watched, not the old one */
    append_rel("rules.d/lists/names.txt", "new\n");
    expect_quiet(w, 1400);
    expect_change(w, 1500, "/rules.d/lists/names.txt");
    rm_tree(old);
    expect_quiet(w, 1600);
    expect_quiet(w, 1700);
    /* removed for good: one change, then nothing more */
    rm_tree(dir);
    expect_quiet(w, 1900);
    expect_change(w, 2000, NULL);
    expect_quiet(w, 5000);
    vg_watch_destroy(w);
    /* leave the fixture as setup made it for later tests */
    mkdir_rel("rules.d");
    mkdir_rel("rules.d/lists");
    write_rel("rules.d/a.yaml", "rules: []\n");
    write_rel("rules.d/lists/names.txt", "ACME\n");
}

/* ---- a single file ------------------------------------------------------ */

static void test_single_file(void **state)
{
    (void)state;
    vg_watch_t *w = watch_rel("rules.d/a.yaml", 100);
    /* its neighbours are not its business */
    write_rel("rules.d/other.yaml", "rules: []\n");
    append_rel("rules.d/lists/names.txt", "more\n");
    expect_quiet(w, 1000);
    /* rename-over, twice (the second time the file is a new inode) */
    for (int i = 0; i < 2; i++) {
        uint64_t t = 2000 + 1000 * (uint64_t)i;
        write_rel("rules.d/a.yaml.new", "rules: []  # saved\n");
        rename_rel("rules.d/a.yaml.new", "rules.d/a.yaml");
        expect_quiet(w, t);
        expect_change(w, t + 100, "/rules.d/a.yaml");
    }
    /* deleted, then created again */
    unlink_rel("rules.d/a.yaml");
    expect_quiet(w, 5000);
    expect_change(w, 5100, "/rules.d/a.yaml");
    write_rel("rules.d/a.yaml", "rules: []\n");
    expect_quiet(w, 6000);
    expect_change(w, 6100, "/rules.d/a.yaml");
    unlink_rel("rules.d/other.yaml");
    expect_quiet(w, 7000);
    vg_watch_destroy(w);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256] = "";
    const char *missing[] = {"/nonexistent-vigil-dir/rules/x.yaml"};
    assert_null(vg_watch_new(missing, 1, 100, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot watch /nonexistent-vigil-dir/rules"));
    assert_non_null(strstr(err, "No such file or directory"));
    /* nothing to watch is allowed (and never changes) */
    vg_watch_t *w = vg_watch_new(NULL, 0, 100, err, sizeof(err));
    assert_non_null(w);
    expect_quiet(w, 100000);
    vg_watch_destroy(w);
    vg_watch_destroy(NULL);
    assert_false(vg_watch_poll(NULL, 0, NULL));
    assert_int_equal(vg_watch_fd(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_changes),
        cmocka_unit_test(test_quiet_period),
        cmocka_unit_test(test_scratch_files_ignored),
        cmocka_unit_test(test_new_subfolder),
        cmocka_unit_test(test_folder_replaced),
        cmocka_unit_test(test_single_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
