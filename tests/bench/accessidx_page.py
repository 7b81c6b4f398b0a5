#!/usr/bin/env python3
"""accessidx_page.py - the cost of a deep page of GET /api/my/access in the
SQLite index: one person with ROWS rows (and another with as many), the page
of 100 after a cursor 150 rows from the oldest, with the statement the
gateway ran before 2026-12-07 ("old") and the one it runs now ("new", from
gateway/state/accessidx_sqlite.c).  Prints ms per page, the median of 5
rounds of 20.  Usage: accessidx_page.py [ROWS] (default 250000)."""
import os, sqlite3, statistics, sys, tempfile, time

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 250000
path = os.path.join(tempfile.mkdtemp(prefix="dz_accessidx_page_"), "a.db")
db = sqlite3.connect(path)
db.executescript("CREATE TABLE access_index (id INTEGER PRIMARY KEY AUTOINCREMENT, tgt TEXT NOT NULL,"
                 " instance TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, line TEXT NOT NULL,"
                 " actor_name TEXT, UNIQUE (instance, seq));"
                 "CREATE INDEX access_index_by_tgt ON access_index (tgt, ts, id);")
ts = lambda i: "2026-12-07T%02d:%02d:%02d.%03dZ" % (i // 3600000 % 24, i // 60000 % 60, i // 1000 % 60, i % 1000)
db.executemany("INSERT INTO access_index (tgt, instance, seq, ts, line) VALUES (?, 'gw', ?, ?, ?)",
               (("AAAAAAA" if i % 2 else "BBBBBBB", i, ts(i), "x" * 600) for i in range(2 * rows)))
db.commit()
cols = "SELECT id, instance, seq, ts, line, actor_name FROM access_index WHERE tgt = ?1 AND "
old = cols + ("(?2 = 0 OR ts < (SELECT ts FROM access_index WHERE id = ?2) OR"
              " (ts = (SELECT ts FROM access_index WHERE id = ?2) AND id < ?2)) ORDER BY ts DESC, id DESC LIMIT ?3")
new = cols + "(ts, id) < (SELECT ts, id FROM access_index WHERE id = ?2 AND tgt = ?1) ORDER BY ts DESC, id DESC LIMIT ?3"
cursor = db.execute("SELECT id FROM access_index WHERE tgt = 'AAAAAAA' ORDER BY ts, id LIMIT 1 OFFSET 150").fetchone()[0]
for name, q in (("old", old), ("new", new)):
    per = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(20):
            assert len(db.execute(q, ("AAAAAAA", cursor, 100)).fetchall()) == 100
        per.append((time.perf_counter() - t) / 20 * 1000)
    print("%s: %.3f ms per page (rounds %s)" % (name, statistics.median(per), " ".join("%.3f" % p for p in per)))
os.unlink(path)
