/* Intrusive linked lists, most kept by a head and a tail pointer: the
 * metrics registry's families and series, the state tables'
 * least-recently-used order, the partitions of vg_partstates. Macros rather than functions because
 * each list links through fields of its own (next, or older/newer); every argument must be a plain
 * lvalue, as each is evaluated more than once. */
#ifndef VIGIL_LIST_H
#define VIGIL_LIST_H

#include <stddef.h>

/* Appends node to the singly linked list (head, tail) linked through the
 * field next. */
#define VG_SLIST_APPEND(head, tail, node, next)                                                    \
    do {                                                                                           \
        (node)->next = NULL;                                                                       \
        if (tail)                                                                                  \
            (tail)->next = (node);                                                                 \
        else                                                                                       \
            (head) = (node);                                                                       \
        (tail) = (node);                                                                           \
    } while (0)

/* Appends node to the doubly linked list (head, tail) linked through the
 * fields prev and next. */
#define VG_DLIST_APPEND(head, tail, node, prev, next)                                              \
    do {                                                                                           \
        (node)->prev = (tail);                                                                     \
        VG_SLIST_APPEND(head, tail, node, next);                                                   \
    } while (0)

/* Takes node out of the doubly linked list (head, tail); node's own
 * fields are left as they were. */
#define VG_DLIST_UNLINK(head, tail, node, prev, next)                                              \
    do {                                                                                           \
        if ((node)->prev)                                                                          \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next)                                                                          \
            (node)->next->prev = (node)->prev;                                                     \
        else                                                                                       \
            (tail) = (node)->prev;                                                                 \
    } while (0)

/* Frees every node of the list at head, linked through the field next,
 * with free_fn (which takes a node), oldest first; head ends NULL. */
#define VG_LIST_FREE(head, next, free_fn)                                                          \
    do {                                                                                           \
        while (head) {                                                                             \
            void *vg_list_gone_ = (head);                                                          \
            (head) = (head)->next;                                                                 \
            free_fn(vg_list_gone_);                                                                \
        }                                                                                          \
    } while (0)

#endif
