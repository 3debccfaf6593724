"""Writing a file so that its final path never holds a half-written file.

Every writer of the project (images, JSON, checkpoints, `.keras`, `.tflite`)
goes through `atomic_path`: it hands out a temporary path in the same folder
(so the final rename is atomic), renames it into place on success and removes
it on any failure, including KeyboardInterrupt.
"""

import contextlib
import os
import pathlib
import tempfile


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; it becomes `path` when the block succeeds.

    The temporary name ends with `path`'s own name, so writers that insist on
    a suffix (Keras's `.keras` and `.weights.h5`) accept it. The result gets
    the usual permissions (0666 less the umask), not mkstemp's private 0600.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_bytes(path, data):
    with atomic_path(path) as temporary:
        pathlib.Path(temporary).write_bytes(data)


def write_text(path, text):
    with atomic_path(path) as temporary:
        pathlib.Path(temporary).write_text(text)
