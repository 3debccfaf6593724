"""Quiet start-up of TensorFlow (and JAX) for the command-line entry points.

Loading TensorFlow prints lines that say nothing to a user of ``cmsc-upscale``
or ``python -m training.*``: the oneDNN notice, "Could not find cuda drivers",
the absl preamble ("All log messages before absl::InitializeLog() ...") while
its shared libraries load, then "failed call to cuInit" (an E-level line) on
a machine without a GPU when the devices are first listed. Setting
``TF_CPP_MIN_LOG_LEVEL`` does not reach the lines printed while the libraries
load, so :func:`load` imports the libraries and lists their devices with file
descriptor 2 (the C++ stderr) pointed at a temporary file, then restores it
and writes back everything but that noise (:func:`drop_noise`): Python
warnings and errors of that window come through, only later. It also sets
``TF_CPP_MIN_LOG_LEVEL=2`` (unless already set), which TensorFlow and XLA
honour for the rest of the run and which child processes inherit: no C++
INFO or WARNING lines, ERROR lines still shown. Likewise for their Python
logs below WARNING (:func:`quiet_python_logs`): absl's scripts log INFO, where
TensorFlow narrates a SavedModel or TFLite export ("Writing fingerprint to
/tmp/...") and JAX says "Unable to initialize backend 'tpu'" on every machine
without one; warnings (e.g. of a GPU that JAX cannot use) still show.
``TF_ENABLE_ONEDNN_OPTS`` is never touched (turning oneDNN off would change
the numbers).

Called only by entry points (``cmsc-upscale``, ``cmsc_tf.entry``), after
their command line is parsed: ``import cmsc_tf`` changes nothing. With
``tf_log=True`` (``--tf_log`` of every command) nothing
is hidden.

A process that crashes inside the window (a C++ abort while loading) loses
the lines captured so far; ``faulthandler`` then still names where it died,
on the real stderr. Rerun with --tf_log to see everything.
"""

import contextlib
import faulthandler
import importlib
import importlib.util
import logging
import os
import re
import sys
import tempfile

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "2"  # C++ ERROR and FATAL lines only

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# A C++ log line (absl / glog format): severity, MMDD, time, thread, file:line] message.
_LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] (.*)")
# The second line of cpu_feature_guard's INFO message.
_CONTINUATION = re.compile(r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler")
_NO_DRIVER = "Could not find cuda drivers on your machine"
# LiteRT's own log format (minimal logging): "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_LITERT_INFO = "INFO: "
_CUINIT_FAILED = "failed call to cuInit"

_LIBRARIES = ("tensorflow", "jax", "jaxlib")

_state = {"no_cuda_driver": False}  # a window saw TensorFlow's "no CUDA driver" line


def drop_noise(text, no_cuda_driver=False):
    """``text`` (what the C++ stderr received) without the start-up noise of TensorFlow and CUDA.

    Dropped: the absl preamble, LiteRT's INFO lines, C++ INFO and WARNING lines (with
    cpu_feature_guard's second line), and the E-level "failed call to cuInit"
    when TensorFlow also said that it found no CUDA driver (in ``text``, or
    earlier: ``no_cuda_driver``), which is a machine without a GPU, not an
    error. Every other line (Python output, real errors) is kept, in order.
    """
    lines = text.splitlines(keepends=True)
    no_cuda_driver = no_cuda_driver or any(_NO_DRIVER in line for line in lines)
    kept = []
    for line in lines:
        log = _LOG_LINE.match(line)
        if line.startswith((_ABSL_PREAMBLE, _LITERT_INFO)) or _CONTINUATION.match(line):
            continue
        if log and (log.group(1) in "IW" or (no_cuda_driver and _CUINIT_FAILED in log.group(2))):
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr():
    """Within: file descriptor 2 goes to a temporary file; after: its text, less :func:`drop_noise`, to stderr."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    guard = not faulthandler.is_enabled()
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            if guard:  # a crash in the window still says where, on the real stderr
                faulthandler.enable(file=saved)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                if guard:
                    faulthandler.disable()
                capture.seek(0)
                text = capture.read().decode("utf-8", "surrogateescape")
                _state["no_cuda_driver"] |= _NO_DRIVER in text
                kept = drop_noise(text, _state["no_cuda_driver"])
                if kept:
                    os.write(2, kept.encode("utf-8", "surrogateescape"))
    finally:
        os.close(saved)


class _LibraryRecords(logging.Filter):
    """Drops records below WARNING logged from the files of TensorFlow or JAX (through absl's logger)."""

    def filter(self, record):
        if record.levelno >= logging.WARNING:
            return True
        roots = tuple(root for name in _LIBRARIES if (root := _package_root(name)))
        return not (roots and record.pathname.startswith(roots))


def _package_root(name):
    module = sys.modules.get(name)  # only a library loaded can have logged
    origin = getattr(module, "__file__", None)  # not __path__: TensorFlow's begins with Keras folders
    return os.path.join(os.path.dirname(origin), "") if origin else None


def quiet_python_logs():
    """TensorFlow's and JAX's Python log records below WARNING are dropped, whichever logger they use."""
    for name in _LIBRARIES:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    absl = logging.getLogger("absl")  # TensorFlow's newer modules log through absl.logging
    if not any(isinstance(f, _LibraryRecords) for f in absl.filters):
        absl.addFilter(_LibraryRecords())


def _initialise(library):
    """Imports ``library`` and initialises what prints at start-up; a library not installed is skipped."""
    try:
        if importlib.util.find_spec(library) is None:
            return
    except (ImportError, ValueError):  # a broken or blocked installation: as if absent
        return
    if library == "keras":
        import keras

        backend = keras.backend.backend()
        if backend in ("tensorflow", "jax"):
            _initialise(backend)
    elif library == "tensorflow":
        import tensorflow as tf

        # Lists (and so initialises) the platforms: cuInit happens here. The
        # runtime (and its device memory) is not created yet.
        tf.config.list_physical_devices()
    else:
        # JAX: imported only. Its backends start at the first computation,
        # which must follow jax.distributed.initialize() on a multi-host run.
        importlib.import_module(library)


def load(*libraries, tf_log=False):
    """Imports ``libraries`` ("keras": Keras and its backend; "tensorflow"; "jax"), quietly unless ``tf_log``.

    Quiet: ``TF_CPP_MIN_LOG_LEVEL=2`` unless set, TensorFlow's and JAX's
    Python logs from WARNING up, and the start-up lines filtered out of
    stderr (module docstring). A library already imported costs
    nothing; one not installed is skipped (its import error, if it is needed,
    comes later where it is used).
    """
    if tf_log:
        for library in libraries:
            _initialise(library)
        return
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
    quiet_python_logs()
    with filtered_stderr():
        for library in libraries:
            _initialise(library)
