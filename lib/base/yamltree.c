/*
 * yamltree.c - bounded YAML-to-tree loader over libyaml's event parser; see
 * yamltree.h.  Owns the document arena.  It never interprets scalars (no
 * implicit typing: "yes" stays the text "yes"), never follows anchors or
 * aliases, and never keeps more than the limits allow, whatever the input.
 */
#include "base/yamltree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "base/err.h"

#include "base/compat.h"

const struct dz_yaml_limits dz_yaml_default_limits = {
    .max_bytes = 256 * 1024,
    .max_depth = 16,
    .max_nodes = 20000,
    .max_children = 1024,
    .max_scalar = 4096,
};

/* Nodes and strings come from one arena per document: they all live exactly
 * as long as the document, so no node is ever freed alone and dz_yaml_free
 * is one walk over the blocks, whatever state a failed load left. */
#define BLOCK_SIZE (16 * 1024)

struct block {
    struct block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

struct dz_yaml_doc {
    char *name;
    struct dz_yaml_node *root;
    struct block *blocks;
};

struct frame {
    struct dz_yaml_node *node;
    struct dz_yaml_node *tail;
    const char *key; /* mappings: the key waiting for its value, or NULL */
    unsigned key_line;
};

struct loader {
    struct dz_yaml_doc *doc;
    const struct dz_yaml_limits *lim;
    struct frame *stack;
    unsigned depth;
    size_t nodes;
    int documents;
    char *err;
    size_t err_len;
};

int dz_yaml_error(char *err, size_t err_len, const char *file, unsigned line, const char *key,
                  const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    if (!err || err_len == 0)
        return DZ_ERR_INVAL;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (line && key)
        snprintf(err, err_len, "%s:%u: %s: %s", file, line, key, reason);
    else if (line)
        snprintf(err, err_len, "%s:%u: %s", file, line, reason);
    else if (key)
        snprintf(err, err_len, "%s: %s: %s", file, key, reason);
    else
        snprintf(err, err_len, "%s: %s", file, reason);
    return DZ_ERR_INVAL;
}

static void *arena_alloc(struct dz_yaml_doc *d, size_t n)
{
    const size_t align = alignof(max_align_t);
    struct block *b = d->blocks;

    if (n > SIZE_MAX - align)
        return NULL;
    /* alignof(max_align_t) is a power of two, so masking rounds up. */
    n = (n + align - 1) & ~(align - 1);
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = d->blocks;
        d->blocks = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

static char *arena_strndup(struct dz_yaml_doc *d, const void *s, size_t n)
{
    char *p = arena_alloc(d, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int fail(struct loader *L, int rc, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct loader *L, int rc, unsigned line, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    dz_yaml_error(L->err, L->err_len, L->doc->name, line, NULL, "%s", reason);
    return rc;
}

static unsigned line_at_offset(const unsigned char *data, size_t len, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off && i < len; i++)
        line += data[i] == '\n';
    return line;
}

static int syntax_error(struct loader *L, const yaml_parser_t *p, const unsigned char *data,
                        size_t len)
{
    unsigned line;

    if (p->error == YAML_MEMORY_ERROR)
        return fail(L, DZ_ERR_NOMEM, 0, "out of memory");
    /* The reader (bad UTF-8, a control character) reports a byte offset,
     * not a mark with a line, so the line is counted here. */
    if (p->error == YAML_READER_ERROR) {
        line = line_at_offset(data, len, p->problem_offset);
        return fail(L, DZ_ERR_PARSE, line, "invalid input: %s",
                    p->problem ? p->problem : "unreadable");
    }
    line = (unsigned)p->problem_mark.line + 1;
    if (p->context)
        return fail(L, DZ_ERR_PARSE, line, "syntax error: %s %s (from line %u)",
                    p->problem ? p->problem : "malformed", p->context,
                    (unsigned)p->context_mark.line + 1);
    return fail(L, DZ_ERR_PARSE, line, "syntax error: %s", p->problem ? p->problem : "malformed");
}

/* Link a new node under the current collection (or as the root). */
static int attach(struct loader *L, struct dz_yaml_node *n)
{
    struct frame *f;

    if (L->depth == 0) {
        if (L->doc->root)
            return fail(L, DZ_ERR_PARSE, n->line, "more than one root node");
        L->doc->root = n;
        return 0;
    }
    f = &L->stack[L->depth - 1];
    if (f->node->count >= L->lim->max_children)
        return fail(L, DZ_ERR_TOOBIG, n->line, "more than %zu members in one %s",
                    L->lim->max_children, f->node->kind == DZ_YAML_MAP ? "mapping" : "list");
    if (f->node->kind == DZ_YAML_MAP) {
        n->key = f->key;
        n->key_line = f->key_line;
        f->key = NULL;
    }
    if (f->tail)
        f->tail->next = n;
    else
        f->node->first = n;
    f->tail = n;
    f->node->count++;
    return 0;
}

static int new_node(struct loader *L, enum dz_yaml_kind kind, unsigned line,
                    struct dz_yaml_node **out)
{
    struct dz_yaml_node *n;

    *out = NULL;
    /* Keys count against max_nodes too, or a mapping of many keys with
     * empty values would cost memory the limit never sees. */
    if (L->nodes >= L->lim->max_nodes)
        return fail(L, DZ_ERR_TOOBIG, line, "more than %zu nodes", L->lim->max_nodes);
    n = arena_alloc(L->doc, sizeof(*n));
    if (!n)
        return fail(L, DZ_ERR_NOMEM, line, "out of memory");
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = line;
    n->file = L->doc->name;
    L->nodes++;
    *out = n;
    return 0;
}

static bool wants_key(const struct loader *L)
{
    const struct frame *f;

    if (L->depth == 0)
        return false;
    f = &L->stack[L->depth - 1];
    return f->node->kind == DZ_YAML_MAP && f->key == NULL;
}

static int on_key(struct loader *L, const yaml_event_t *ev, unsigned line)
{
    struct frame *f = &L->stack[L->depth - 1];
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    if (L->nodes >= L->lim->max_nodes)
        return fail(L, DZ_ERR_TOOBIG, line, "more than %zu nodes", L->lim->max_nodes);
    L->nodes++;
    if (len > L->lim->max_scalar)
        return fail(L, DZ_ERR_TOOBIG, line, "key longer than %zu bytes", L->lim->max_scalar);
    /* libyaml accepts "\0" in a double-quoted scalar; every user of the tree
     * reads keys as C strings and would see a different, shorter key. */
    if (memchr(s, '\0', len))
        return fail(L, DZ_ERR_PARSE, line, "NUL byte in a key");
    /* A repeated key would silently replace the first in most loaders: an
     * operator reading the file sees one value, the program uses another. */
    /* Quadratic, but bounded by max_children per mapping. */
    for (const struct dz_yaml_node *m = f->node->first; m; m = m->next) {
        if (strlen(m->key) == len && memcmp(m->key, s, len) == 0)
            return fail(L, DZ_ERR_PARSE, line, "duplicate key \"%s\" (first at line %u)", m->key,
                        m->key_line);
    }
    f->key = arena_strndup(L->doc, s, len);
    if (!f->key)
        return fail(L, DZ_ERR_NOMEM, line, "out of memory");
    f->key_line = line;
    return 0;
}

static int on_scalar(struct loader *L, const yaml_event_t *ev, unsigned line)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct dz_yaml_node *n = NULL;
    int rc;

    /* No anchors or aliases at all: besides the exponential expansion
     * ("billion laughs"), a shared node would mean one value edited in one
     * place changes rules somewhere else in the file. */
    if (ev->data.scalar.anchor)
        return fail(L, DZ_ERR_PARSE, line, "anchors (&) are not allowed");
    if (ev->data.scalar.tag)
        return fail(L, DZ_ERR_PARSE, line, "tags (!) are not allowed");
    if (wants_key(L))
        return on_key(L, ev, line);
    if (len > L->lim->max_scalar)
        return fail(L, DZ_ERR_TOOBIG, line, "value longer than %zu bytes", L->lim->max_scalar);
    if (memchr(s, '\0', len))
        return fail(L, DZ_ERR_PARSE, line, "NUL byte in a value");
    rc = new_node(L, DZ_YAML_SCALAR, line, &n);
    if (rc != 0)
        return rc;
    n->str = arena_strndup(L->doc, s, len);
    if (!n->str)
        return fail(L, DZ_ERR_NOMEM, line, "out of memory");
    n->len = len;
    n->is_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return attach(L, n);
}

static int on_start(struct loader *L, enum dz_yaml_kind kind, const yaml_char_t *anchor,
                    const yaml_char_t *tag, unsigned line)
{
    struct dz_yaml_node *n;
    int rc;

    if (anchor)
        return fail(L, DZ_ERR_PARSE, line, "anchors (&) are not allowed");
    if (tag)
        return fail(L, DZ_ERR_PARSE, line, "tags (!) are not allowed");
    /* A mapping or list as a key ("? [a, b]: x") is legal YAML but no
     * config or policy keyword is one, and the tree stores keys as text. */
    if (wants_key(L))
        return fail(L, DZ_ERR_PARSE, line, "a mapping key must be a plain value");
    if (L->depth >= L->lim->max_depth)
        return fail(L, DZ_ERR_TOOBIG, line, "nested deeper than %u levels", L->lim->max_depth);
    rc = new_node(L, kind, line, &n);
    if (rc != 0)
        return rc;
    rc = attach(L, n);
    if (rc != 0)
        return rc;
    L->stack[L->depth].node = n;
    L->stack[L->depth].tail = NULL;
    L->stack[L->depth].key = NULL;
    L->stack[L->depth].key_line = 0;
    L->depth++;
    return 0;
}

static int on_event(struct loader *L, const yaml_event_t *ev, bool *done)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (L->documents++ > 0)
            return fail(L, DZ_ERR_PARSE, line, "only one YAML document per file");
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_ALIAS_EVENT:
        return fail(L, DZ_ERR_PARSE, line, "aliases (*) are not allowed");
    case YAML_SCALAR_EVENT:
        return on_scalar(L, ev, line);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(L, DZ_YAML_SEQ, ev->data.sequence_start.anchor, ev->data.sequence_start.tag,
                        line);
    case YAML_MAPPING_START_EVENT:
        return on_start(L, DZ_YAML_MAP, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
                        line);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (L->depth == 0)
            return fail(L, DZ_ERR_PARSE, line, "unbalanced collection end");
        L->depth--;
        return 0;
    case YAML_NO_EVENT:
        break;
    }
    return fail(L, DZ_ERR_PARSE, line, "unexpected YAML event");
}

int dz_yaml_load_buf(const char *name, const void *data, size_t len,
                     const struct dz_yaml_limits *lim, struct dz_yaml_doc **out, char *err,
                     size_t err_len)
{
    struct loader L;
    yaml_parser_t parser;
    bool have_parser = false;
    bool done = false;
    int rc = DZ_ERR_NOMEM;

    *out = NULL;
    if (err && err_len)
        err[0] = '\0';
    memset(&L, 0, sizeof(L));
    L.lim = lim ? lim : &dz_yaml_default_limits;
    L.err = err;
    L.err_len = err_len;
    L.doc = calloc(1, sizeof(*L.doc));
    if (!L.doc)
        goto out;
    L.doc->name = strdup(name ? name : "<input>");
    /* Sized once from the limit: on_start refuses depth max_depth before it
     * would index past the end, so the stack never grows. */
    L.stack = calloc(L.lim->max_depth + 1, sizeof(*L.stack));
    if (!L.doc->name || !L.stack) {
        dz_yaml_error(err, err_len, name ? name : "<input>", 0, NULL, "out of memory");
        goto out;
    }
    if (len > L.lim->max_bytes) {
        rc = fail(&L, DZ_ERR_TOOBIG, 0, "larger than %zu bytes", L.lim->max_bytes);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = fail(&L, DZ_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, data, len);
    /* UTF-8 only: no guessing at UTF-16 byte-order marks. */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&L, &parser, data, len);
            goto out;
        }
        rc = on_event(&L, &ev, &done);
        yaml_event_delete(&ev);
        if (rc != 0)
            goto out;
    }
    *out = L.doc;
    L.doc = NULL;
    rc = 0;
out:
    if (have_parser)
        yaml_parser_delete(&parser);
    free(L.stack);
    dz_yaml_free(L.doc);
    return rc;
}

int dz_yaml_load_file(const char *path, const struct dz_yaml_limits *lim, struct dz_yaml_doc **out,
                      char *err, size_t err_len)
{
    const struct dz_yaml_limits *l = lim ? lim : &dz_yaml_default_limits;
    unsigned char *data = NULL;
    struct stat st;
    size_t have = 0;
    int fd = -1;
    int rc = DZ_ERR_IO;

    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang start-up; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        dz_yaml_error(err, err_len, path, 0, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dz_yaml_error(err, err_len, path, 0, NULL, "not a regular file");
        goto out;
    }
    if ((unsigned long long)st.st_size > l->max_bytes) {
        dz_yaml_error(err, err_len, path, 0, NULL, "larger than %zu bytes", l->max_bytes);
        rc = DZ_ERR_TOOBIG;
        goto out;
    }
    /* One byte more than the limit, so a file that grew since fstat is seen
     * as too large by reading it, rather than silently cut at max_bytes. */
    data = malloc(l->max_bytes + 1);
    if (!data) {
        dz_yaml_error(err, err_len, path, 0, NULL, "out of memory");
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    /* Read to EOF rather than trusting st_size: the file may change under us. */
    for (;;) {
        ssize_t n = read(fd, data + have, l->max_bytes + 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            dz_yaml_error(err, err_len, path, 0, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        if (have > l->max_bytes) {
            dz_yaml_error(err, err_len, path, 0, NULL, "larger than %zu bytes", l->max_bytes);
            rc = DZ_ERR_TOOBIG;
            goto out;
        }
    }
    rc = dz_yaml_load_buf(path, data, have, l, out, err, err_len);
out:
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}

const struct dz_yaml_node *dz_yaml_root(const struct dz_yaml_doc *d)
{
    return d ? d->root : NULL;
}

const char *dz_yaml_name(const struct dz_yaml_doc *d)
{
    return d ? d->name : "";
}

void dz_yaml_free(struct dz_yaml_doc *d)
{
    struct block *b;

    if (!d)
        return;
    while ((b = d->blocks) != NULL) {
        d->blocks = b->next;
        free(b);
    }
    free(d->name);
    free(d);
}

const struct dz_yaml_node *dz_yaml_get(const struct dz_yaml_node *map, const char *key)
{
    if (!map || map->kind != DZ_YAML_MAP)
        return NULL;
    for (const struct dz_yaml_node *m = map->first; m; m = m->next) {
        if (strcmp(m->key, key) == 0)
            return m;
    }
    return NULL;
}

bool dz_yaml_is_null(const struct dz_yaml_node *n)
{
    if (!n || n->kind != DZ_YAML_SCALAR || !n->is_plain)
        return false;
    /* The YAML 1.2 core schema null forms, and only unquoted: "null" in
     * quotes is the four-letter text. */
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *dz_yaml_kind_name(enum dz_yaml_kind k)
{
    switch (k) {
    case DZ_YAML_SCALAR:
        return "a value";
    case DZ_YAML_SEQ:
        return "a list";
    case DZ_YAML_MAP:
        return "a mapping";
    }
    return "a node";
}
