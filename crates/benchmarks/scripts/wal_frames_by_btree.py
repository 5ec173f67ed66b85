"""Which B-trees a run of commits rewrote: counts the frames of a plain SQLite file's write-ahead log by the
B-tree their page belongs to (SQLite's `dbstat`), beside each B-tree's size, so `frames - pages` is what
the commits rewrote.

Made for the `insert_profile` example of `benchmarks`, which leaves a plain file and its log with
`KEEP=1 NO_CHECKPOINT=1` (no checkpoint, so the log holds every frame the run wrote):

    NO_CHECKPOINT=1 KEEP=1 target/release/examples/insert_profile plain 1000 1
    python3 crates/benchmarks/scripts/wal_frames_by_btree.py /tmp/.tmpXXXX/plain.kept

Needs a Python whose sqlite3 has `dbstat` (Debian's does). The file is copied first: opening it reads the
log, and that must not change what was kept.
"""

import collections
import shutil
import sqlite3
import struct
import sys
import tempfile

WAL_HEADER = 32
FRAME_HEADER = 24


def main(path: str) -> None:
    with open(path + "-wal", "rb") as log:
        wal = log.read()
    page_size = struct.unpack(">I", wal[8:12])[0]
    frames: collections.Counter = collections.Counter()
    commits = 0
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        page, size_after_commit = struct.unpack(">II", wal[offset : offset + 8])
        frames[page] += 1
        commits += size_after_commit != 0
        offset += FRAME_HEADER + page_size
    with tempfile.TemporaryDirectory() as scratch:
        copy = scratch + "/copy.db"
        shutil.copy(path, copy)
        shutil.copy(path + "-wal", copy + "-wal")
        conn = sqlite3.connect(copy)
        owner = dict((page, name) for name, page in conn.execute("SELECT name, pageno FROM dbstat"))
        conn.close()
    pages = collections.Counter(owner.values())
    by_tree: collections.Counter = collections.Counter()
    for page, count in frames.items():
        by_tree[owner.get(page, "(freed)")] += count
    print(f"{sum(frames.values())} frames, {commits} commits, {page_size}-byte pages")
    print(f"{'B-tree':40} {'frames':>8} {'pages':>8} {'rewrites':>9}")
    for name, count in by_tree.most_common():
        if count > 1:
            print(f"{name:40} {count:8} {pages[name]:8} {count - pages[name]:9}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: wal_frames_by_btree.py PLAIN_FILE (its -wal beside it)")
    main(sys.argv[1])
