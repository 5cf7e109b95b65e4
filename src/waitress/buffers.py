"""The ``wsgi.file_wrapper`` type.

The server recognises instances of :class:`ReadOnlyFileBasedBuffer` returned
by an application and sends the file itself (Content-Length from the file's
remaining size when it is seekable), so the iteration protocol below only runs
when something other than the server iterates the wrapper.
"""
from typing import IO, Any, Iterator


def _is_seekable(fp: Any) -> bool:
    """The file's own answer when it has ``seekable()``, else whether it has
    both ``seek`` and ``tell`` (the test the server applies too)."""
    if hasattr(fp, "seekable"):
        return bool(fp.seekable())
    return hasattr(fp, "seek") and hasattr(fp, "tell")


class ReadOnlyFileBasedBuffer:
    """Wraps a file-like object for ``environ['wsgi.file_wrapper']`` (PEP 3333)."""

    def __init__(self, file: IO[bytes], block_size: int = 32768) -> None:
        self.file = file
        self.block_size = block_size
        # As in Waitress: a middleware that wraps the wrapper (to serve Range
        # requests, say) can seek a seekable file through it.
        if _is_seekable(file):
            if hasattr(file, "seekable"):
                self.seekable = file.seekable
            self.seek = file.seek
            self.tell = file.tell

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.file.read(self.block_size)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        # PEP 3333: the server calls close(), which must close the file.
        if hasattr(self.file, "close"):
            self.file.close()
