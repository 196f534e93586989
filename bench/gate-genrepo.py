#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# bench/gate-genrepo.py COMMITS BYTES [PARENT] [SEED] [SUBJECT]: a `git fast-import` stream of
# COMMITS commits on refs/heads/gen, each rewriting one of 256 files with BYTES of
# incompressible data (so the packed size is about COMMITS * BYTES), optionally on top of
# commit PARENT. Deterministic for a SEED.
import os, random, sys

commits, size = int(sys.argv[1]), int(sys.argv[2])
parent = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
subject = sys.argv[5] if len(sys.argv) > 5 else "commit"
out = sys.stdout.buffer
t = 1700000000
for i in range(commits):
    data = rng.randbytes(size)
    msg = f"{subject} {i + 1}\n".encode()
    out.write(b"commit refs/heads/gen\n")
    out.write(b"author Bench <bench@example.invalid> %d +0000\n" % (t + i))
    out.write(b"committer Bench <bench@example.invalid> %d +0000\n" % (t + i))
    out.write(b"data %d\n%s" % (len(msg), msg))
    if i == 0 and parent:
        out.write(b"from %s\n" % parent.encode())
    out.write(b"M 100644 inline d%02x/f%03d.bin\n" % (i % 16, i % 256))
    out.write(b"data %d\n" % len(data))
    out.write(data)
    out.write(b"\n")
