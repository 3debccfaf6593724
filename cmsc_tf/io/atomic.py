"""Writing a file so that its final path never holds a half-written file.

Every writer of the project (images, JSON, checkpoints, `.keras`, `.tflite`)
goes through `atomic_path`: it hands out a temporary path in the same folder
(so the final rename is atomic), renames it into place on success and removes
it on any failure, including KeyboardInterrupt (and SIGTERM, where the program
turns it into an exception, as ``cmsc-upscale`` does).

Temporary names are hidden and recognisable (`is_temporary`), so a leftover
of a killed process (SIGKILL, power loss) is never taken for an input.

The file's data reach the disk (fsync) before the rename, and the rename
itself before `atomic_path` returns (fsync of the folder, where the
filesystem allows it): without that, a power loss soon after a checkpoint
can leave its final name on an empty or truncated file (a rename may reach
the disk before the data it names).

`check_output_file` / `check_output_folder` refuse an output path that cannot
be written, so that commands fail before their work rather than after it.
"""

import contextlib
import os
import pathlib
import secrets

TEMPORARY_PREFIX = ".tmp-"
# TEMPORARY_PREFIX + 8 hex digits + "-": what a temporary name adds to the final name.
_RANDOM_HEX = 8
_ADDED = len(TEMPORARY_PREFIX) + _RANDOM_HEX + 1
# POSIX's usual NAME_MAX, where the filesystem does not say.
_DEFAULT_NAME_MAX = 255


def is_temporary(path):
    """Whether ``path``'s name is one of `atomic_path`'s temporary names."""
    return pathlib.Path(path).name.startswith(TEMPORARY_PREFIX)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return _DEFAULT_NAME_MAX


def _temporary_tail(folder, name):
    """The end of ``name`` that fits a temporary name within the folder's name limit.

    The end, because writers check the suffix (Keras's `.keras`,
    `.weights.h5`); the limit counts bytes, so a cut through a multi-byte
    UTF-8 character drops that character's remaining bytes.
    """
    encoded = os.fsencode(name)
    budget = _name_max(folder) - _ADDED
    if len(encoded) <= budget:
        return name
    tail = encoded[len(encoded) - budget:]
    while tail and 0x80 <= tail[0] < 0xC0:  # UTF-8 continuation bytes
        tail = tail[1:]
    return os.fsdecode(tail)


def _sync(path, folder=False):
    """Flushes ``path`` (a file, or a folder's entries) to the disk."""
    descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if folder else 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; it becomes `path` when the block succeeds.

    The temporary name is ``.tmp-XXXXXXXX-<name>`` (cut from the left when
    that would exceed the filesystem's name limit), so writers that insist on
    a suffix accept it. The result gets the usual permissions (0666 less the
    umask).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tail = _temporary_tail(path.parent, path.name)
    temporary = None
    try:
        while temporary is None:
            # The name is set before the file exists, so an exception (a
            # signal) arriving just after the creation still removes it below.
            temporary = os.path.join(path.parent, f"{TEMPORARY_PREFIX}{secrets.token_hex(_RANDOM_HEX // 2)}-{tail}")
            try:
                os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:  # another file has this random name: not ours to remove
                temporary = None
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())
        _sync(temporary)
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # some filesystems cannot sync a folder; the file itself is on disk
        _sync(path.parent, folder=True)


def write_bytes(path, data):
    with atomic_path(path) as temporary:
        pathlib.Path(temporary).write_bytes(data)


def write_text(path, text):
    with atomic_path(path) as temporary:
        pathlib.Path(temporary).write_text(text)


# ----------------------------------------------------------------------------
# Up-front checks of output paths: one-line reasons, before any work
# ----------------------------------------------------------------------------


def check_output_folder(path):
    """Raises ValueError (naming the culprit) unless ``path`` is, or can be created as, a writable folder.

    Creates nothing: a command refused for another reason leaves no trace.
    """
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):  # the nearest existing folder would hold the new ones
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{existing} is not a writable folder")


def check_output_file(path):
    """Raises ValueError (naming the culprit) unless `atomic_path` can write ``path``.

    An existing regular file may be replaced; a folder, a device or a FIFO
    may not (the rename would replace the special file itself).
    """
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a file")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"{path} exists and is not a regular file")
    check_output_folder(os.path.dirname(os.path.abspath(path)))
