/*
 * yamltree.h - a small, bounded YAML document loader on top of libyaml.
 *
 * It turns one YAML document into an immutable tree of scalars, sequences
 * and mappings, each node remembering the line it starts on, so that every
 * consumer (config, policies, ...) can report `file:line: key: reason`.
 * It deliberately supports a safe subset: one document per file, scalar
 * mapping keys, no anchors, aliases or explicit tags (no billion-laughs, no
 * type tricks), no duplicate keys (the second would silently win in most
 * loaders).  Scalars are kept as text: the consumer types them with the
 * strict parsers of parse.h.  Everything is bounded by struct dz_yaml_limits.
 *
 * A document owns all its nodes and strings (one arena) and is freed with
 * dz_yaml_free.  Loading is thread-safe; a loaded document is read-only and
 * may be read from any thread.
 *
 * (Named yamltree.h, not yaml.h, so that it does not shadow libyaml's own
 * <yaml.h> under the build's -Ilib.)
 */
#ifndef DZ_YAMLTREE_H
#define DZ_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

struct dz_yaml_limits {
    size_t max_bytes;    /* input size */
    unsigned max_depth;  /* nesting of sequences and mappings */
    size_t max_nodes;    /* nodes and keys together */
    size_t max_children; /* members of one sequence or mapping */
    size_t max_scalar;   /* bytes of one scalar or key */
};

/* 256 KiB, depth 16, 20000 nodes, 1024 members, 4 KiB scalars. */
extern const struct dz_yaml_limits dz_yaml_default_limits;

enum dz_yaml_kind { DZ_YAML_SCALAR = 1, DZ_YAML_SEQ, DZ_YAML_MAP };

struct dz_yaml_node {
    enum dz_yaml_kind kind;
    unsigned line;              /* 1-based line where the node starts */
    const char *file;           /* the document's name, for messages */
    const char *key;            /* mapping members: their key; else NULL */
    unsigned key_line;          /* mapping members: the key's line */
    const char *str;            /* scalars: the text, NUL-terminated, no NUL inside */
    size_t len;                 /* scalars: strlen(str) */
    bool is_plain;              /* scalars: written without quotes */
    size_t count;               /* sequences and mappings: number of members */
    struct dz_yaml_node *first; /* first member (mapping members carry .key) */
    struct dz_yaml_node *next;  /* next member of the parent */
};

struct dz_yaml_doc;

/*
 * Load one document from a file (a regular file of at most lim->max_bytes)
 * or from memory (name is used in messages).  lim NULL = defaults.
 * On success *out owns the document.  On failure err gets
 * "name:line: reason" (or "name: reason") and the return is DZ_ERR_IO
 * (cannot read), DZ_ERR_TOOBIG (a limit), DZ_ERR_PARSE (syntax or a refused
 * construct) or DZ_ERR_NOMEM.
 */
int dz_yaml_load_file(const char *path, const struct dz_yaml_limits *lim, struct dz_yaml_doc **out,
                      char *err, size_t err_len);
int dz_yaml_load_buf(const char *name, const void *data, size_t len,
                     const struct dz_yaml_limits *lim, struct dz_yaml_doc **out, char *err,
                     size_t err_len);

/* The root node, or NULL for an empty document. */
const struct dz_yaml_node *dz_yaml_root(const struct dz_yaml_doc *d);
/* The name given at load (the path for files). */
const char *dz_yaml_name(const struct dz_yaml_doc *d);

/* Free the document and every node; NULL is a no-op. */
void dz_yaml_free(struct dz_yaml_doc *d);

/* The member of a mapping with this key, or NULL (also when map is NULL or
 * not a mapping). */
const struct dz_yaml_node *dz_yaml_get(const struct dz_yaml_node *map, const char *key);

/* True for a plain scalar "", "~", "null", "Null" or "NULL" (YAML null). */
bool dz_yaml_is_null(const struct dz_yaml_node *n);

/* Human name of a node kind: "a scalar", "a list", "a mapping". */
const char *dz_yaml_kind_name(enum dz_yaml_kind k);

/*
 * Format "file:line: key: reason" into err (key NULL: "file:line: reason";
 * line 0: "file: key: reason").  err may be NULL.  Returns DZ_ERR_INVAL so
 * that callers can `return dz_yaml_error(...)`.
 */
int dz_yaml_error(char *err, size_t err_len, const char *file, unsigned line, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
