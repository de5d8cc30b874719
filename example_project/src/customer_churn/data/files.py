"""Files written whole or not at all: a temporary file beside the target, then one rename.

Apart from `ingest` (tables) so that `contract_file` can use it without importing the
project's contract, which it may be replacing.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def replacing(path: Path) -> Iterator[str]:
    """A temporary file beside `path` to write to; it replaces `path` in one rename when the
    block ends, or is removed when the block fails: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> Path:
    """Write text (UTF-8) whole or not at all (see `replacing`)."""
    with replacing(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")
    return path
