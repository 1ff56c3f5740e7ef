"""SHA-256 of a file, read in 1 MiB blocks: the checkpoint hash every record carries, and the
hash pretrained and official files are checked against."""

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
