"""What the absl entry points share: one-line usage errors, quiet start-up, errors on their own line.

The installed commands (``cmsc-evaluate``, ``cmsc-export``) and each
``python -m training.<script>`` of a checkout end with ``entry.run(main, "<program>")``
instead of ``app.run(main)``:

- a bad command line (an unknown flag, a bad flag value, a missing flag file,
  an ``app.UsageError`` raised by ``main``) is one line on stderr,
  ``training.<script>: error: <message>``, and exit status 2, instead of
  absl's usage text (``--help`` still prints it);
- a :class:`CommandError` raised by ``main`` (bad input found while working)
  is one line, ``<program>: error: <message>``, and exit status 1;
- Ctrl-C is one line, ``training.<script>: interrupted`` (plus the script's
  hint, e.g. how to resume), and exit status 130, instead of a traceback;
  SIGTERM the same, ``interrupted by SIGTERM`` and exit status 143, after the
  file being written (``atomic_path``) is removed;
- a write past a file-size limit (``ulimit -f``) fails as a full disk does
  (an ``OSError``, reported in one line) instead of killing with SIGXFSZ;
- any message of an error (those lines, ``sys.exit("error: ...")``, a
  traceback) starts on a line of its own, even when a progress bar (Keras's
  on stdout, tqdm's on stderr) was left mid-line: :func:`fresh_line`;
- ``--tf_log`` (defined here, so every script has it) shows the C++ log
  lines of TensorFlow and CUDA that :func:`load` hides by default
  (:mod:`cmsc_tf._quiet`). Scripts that load TensorFlow or JAX do it through
  :func:`load`, after their flags are parsed, so that ``--help`` and usage
  errors answer at once.
"""

import os
import signal
import sys

from absl import app, flags

from cmsc_tf import _quiet

FLAGS = flags.FLAGS

flags.DEFINE_bool("tf_log", False, "Show the C++ log lines of TensorFlow, XLA and CUDA (INFO, WARNING, the "
                  "start-up notices, 'no CUDA driver' errors), which are hidden by default.")

USAGE_ERROR_CODE = 2
ERROR_CODE = 1
INTERRUPTED_CODE = 130  # the shell's code for SIGINT


class LineTracker:
    """A text stream that remembers whether its last write left a line open (a progress bar)."""

    def __init__(self, stream):
        self._stream = stream
        self.line_open = False

    def write(self, text):
        if text:
            self.line_open = not text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def track_lines():
    """Wraps sys.stdout and sys.stderr in :class:`LineTracker` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, LineTracker):
            setattr(sys, name, LineTracker(stream))


def fresh_line():
    """Ends a line that a progress bar left open on stdout or stderr, so that what follows starts a line."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LineTracker) and stream.line_open:
            stream.write("\n")
            stream.flush()


def load(*libraries):
    """Imports ``libraries`` (``cmsc_tf._quiet.load``): quietly, unless ``--tf_log``.

    A library that Keras's backend needs and that is not installed
    (``KERAS_BACKEND=jax`` without JAX) is a usage error: one line, exit 2.
    """
    try:
        _quiet.load(*libraries, tf_log=FLAGS.tf_log)
    except ImportError as error:
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        raise app.UsageError(
            f"cannot import {error.name or 'a library'} ({error}), which KERAS_BACKEND={backend} needs: install it "
            "(pip install -e '.[jax]' for JAX) or choose another KERAS_BACKEND") from None


class CommandError(Exception):
    """A failure of the command's work (a missing file, a damaged model): one line, exit status 1."""


def usage_error(program, message):
    """Exits with ``program: error: message`` on one line and status 2."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    text = text.removeprefix("ERROR:: ")  # absl's prefix of a flag file it cannot open
    fresh_line()
    print(f"{program}: error: {text}", file=sys.stderr, flush=True)
    sys.exit(USAGE_ERROR_CODE)


class Terminated(KeyboardInterrupt):
    """SIGTERM raised where the program is, as Ctrl-C is: writers' ``atomic_path`` removes its temporary file."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run(main, program, interrupted="", flags_module=None):
    """``app.run(main)`` with the conventions of the module docstring.

    ``interrupted``: what to add to the line printed on Ctrl-C (e.g. how to resume).
    ``flags_module``: the module (or its name) that defines the command's flags,
    when it is not the main module (an installed command, or a thin
    ``python -m training.*`` over a library module): ``--help`` lists the
    main module's key flags only.
    """
    track_lines()
    if flags_module is not None:
        for flag in FLAGS.get_key_flags_for_module(flags_module):
            FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def parse_flags(argv):
        try:
            return FLAGS(argv)
        except flags.Error as error:
            usage_error(program, error)

    def guarded_main(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            usage_error(program, error)
        except CommandError as error:
            fresh_line()
            print(f"{program}: error: {error}", file=sys.stderr, flush=True)
            sys.exit(ERROR_CODE)
        except KeyboardInterrupt as error:
            fresh_line()
            cause = " by SIGTERM" if isinstance(error, Terminated) else ""
            print(f"{program}: interrupted{cause}{'; ' + interrupted if interrupted else ''}",
                  file=sys.stderr, flush=True)
            sys.exit(128 + signal.SIGTERM if cause else INTERRUPTED_CODE)
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                fresh_line()
            raise
        except BaseException:
            fresh_line()
            raise

    # SIGTERM's default action kills on the spot, mid-write and without a word.
    signal.signal(signal.SIGTERM, _raise_terminated)
    # A file-size limit (ulimit -f) kills with SIGXFSZ and a core dump by default; ignored, the
    # write that crosses it fails with EFBIG, an OSError that the command reports in one line.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    app.run(guarded_main, flags_parser=parse_flags)
