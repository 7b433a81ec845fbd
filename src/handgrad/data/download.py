"""Fetch a data file once into a cache directory: atomic write, sha1 verified.

The file is streamed into a temporary file beside its destination and renamed into place only
after its sha1 matched, so the cache never holds a partial or wrong file (also when several
processes download at once). Every failure is a one-line `DataError` that says where to put the
file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

from handgrad.errors import DataError

CHUNK = 1 << 16


def sha1_of(path: Path) -> str:
    """The hex sha1 of a file's bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha1(path: Path, sha1: str | None, fix: str) -> None:
    """Raise DataError unless `path` has the given sha1 (None: no check). `fix` ends the message."""
    if sha1 is not None and (actual := sha1_of(path)) != sha1:
        raise DataError(f"{path} has sha1 {actual}, expected {sha1}; {fix}")


def cached_download(url: str, root: Path, sha1: str | None, timeout: float = 30.0) -> Path:
    """`root/<file name in url>`, downloaded from `url` first if it is not there yet.

    A file already in the cache is checked against `sha1` too (and refused, not replaced: it may
    be the user's own copy).
    """
    dest = root / Path(urlparse(url).path).name
    by_hand = f"download {url} by hand to {dest}, or set data.path to a local copy"
    if dest.exists():
        check_sha1(dest, sha1, fix=f"delete it to download again, or {by_hand}")
        return dest
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data cache {root} ({exc}); set data.root") from exc
    _download(url, dest, sha1, timeout, by_hand)
    return dest


def _download(url: str, dest: Path, sha1: str | None, timeout: float, by_hand: str) -> None:
    """Stream `url` into a temp file in dest's directory, verify, then rename it to `dest`."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha1()
        with os.fdopen(fd, "wb") as out:
            try:
                with urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (OSError, ValueError, http.client.HTTPException) as exc:  # offline, bad URL
                raise DataError(f"could not download {url} ({exc}); {by_hand}") from exc
        if sha1 is not None and digest.hexdigest() != sha1:
            raise DataError(
                f"the download from {url} has sha1 {digest.hexdigest()}, expected {sha1} "
                f"(nothing was saved); {by_hand}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
