#!/usr/bin/env python3
"""What FTS5 indexing costs per message by transaction size (issue 8, BENCHMARKS.md).

Stores 200,000 messages of 4-16 Zipf-distributed words in an external-content FTS5 table
laid out like Socket-Hub's `messages_fts` (WAL, synchronous=FULL, a temp dir), then
indexes them in transactions of N messages and prints the CPU per message. Python's
sqlite3 module, no other dependency:

  python3 bench/fts-chunks.py
"""

import os
import random
import sqlite3
import tempfile
import time

random.seed(1)
WORDS = [f"w{i}" for i in range(20000)]
WEIGHTS = [1 / (i + 1) for i in range(20000)]
MESSAGES = [" ".join(random.choices(WORDS, WEIGHTS, k=random.randint(4, 16))) for _ in range(200000)]


def run(chunk, automerge=None):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "fts.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY AUTOINCREMENT, content TEXT)")
        db.execute("CREATE VIRTUAL TABLE f USING fts5(content, content='m', content_rowid='id',"
                   " tokenize='unicode61 remove_diacritics 0')")
        if automerge is not None:
            db.execute(f"INSERT INTO f (f, rank) VALUES ('automerge', {automerge})")
        db.execute("BEGIN")
        db.executemany("INSERT INTO m (content) VALUES (?)", [(m,) for m in MESSAGES])
        db.execute("COMMIT")
        cpu, wall, done = time.process_time(), time.time(), 0
        while done < len(MESSAGES):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO f (rowid, content) SELECT id, content FROM m"
                       " WHERE id > ? AND id <= ?", (done, done + chunk))
            db.execute("COMMIT")
            done += chunk
        n = len(MESSAGES)
        print(f"chunk {chunk:5}, automerge {automerge or 'default'}: "
              f"{(time.process_time() - cpu) / n * 1e6:.1f} µs CPU and "
              f"{(time.time() - wall) / n * 1e6:.1f} µs wall per message")
        db.close()


for size in (64, 2048, 8192):
    run(size)
run(2048, automerge=16)
