"""What the notebooks in ``colab/`` need from their surroundings: where they run, data, scripts.

* :func:`in_colab`: whether the code runs in Google Colab (Colab-only cells
  such as ``git clone`` and file upload are guarded with it).
* :func:`find_data_dir`: the datasets folder (layout of ``../shared/datasets``)
  from ``$CMSC_DATA_DIR`` or a checkout beside ``../shared``; ``None`` means
  "use the embedded default" (the scikit-image photographs).
* :func:`run_module`: ``python -m <module> <args>`` in a child process with its
  output streamed into the notebook as it comes, raising on failure, so a
  notebook runs the same commands a user types in a shell and a failing
  command stops the notebook (IPython's ``!cmd`` would carry on).
* :func:`start_tensorboard`: TensorBoard served from the notebook's own
  kernel (outside Colab), so it stops with the kernel; ``%tensorboard`` would
  leave a server process running after the kernel is gone.
"""

import codecs
import os
import pathlib
import subprocess
import sys
import urllib.parse

# Relative to the repository root, the working directory of the notebooks.
SHARED_DATASETS = "../shared/datasets"
# Log folder -> URL of the TensorBoard this process serves for it.
_tensorboards = {}


def in_colab():
    return "google.colab" in sys.modules


def find_data_dir(environ=None, root="."):
    """``$CMSC_DATA_DIR``, else ``<root>/../shared/datasets`` if it exists, else ``None``."""
    environ = os.environ if environ is None else environ
    if environ.get("CMSC_DATA_DIR"):
        path = pathlib.Path(environ["CMSC_DATA_DIR"])
        if not path.is_dir():
            raise FileNotFoundError(f"CMSC_DATA_DIR={path} is not a folder")
        return path
    path = pathlib.Path(root) / SHARED_DATASETS
    return path if path.is_dir() else None


def run_module(module, args=(), out=None, env=None):
    """Runs ``python -m module *args`` (this interpreter), echoing its output; returns it.

    Output (stdout and stderr together) is copied to ``out`` (default
    ``sys.stdout``, which a notebook shows) chunk by chunk, so progress bars
    and per-epoch lines appear while the command runs. A non-zero exit raises
    ``subprocess.CalledProcessError`` carrying the whole output.
    """
    out = sys.stdout if out is None else out
    command = [sys.executable, "-m", module, *map(str, args)]
    child_env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, **(env or {})}
    chunks = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # chunks may split a character
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env) as process:
        # read1 returns what is there (up to 64 KiB) without waiting to fill the buffer.
        while chunk := process.stdout.read1(65536):
            text = decoder.decode(chunk)
            chunks.append(text)
            out.write(text)
            out.flush()
        returncode = process.wait()
    output = "".join(chunks)
    if returncode:
        raise subprocess.CalledProcessError(returncode, command, output=output)
    return output


def start_tensorboard(logdir, height=800):
    """Serves TensorBoard on ``logdir`` from a thread of this process; returns its URL.

    Unlike ``%tensorboard``, which starts a detached ``tensorboard`` process
    that outlives the kernel, this server lives and dies with the calling
    process (a notebook's kernel): its thread is a daemon, and the data server
    TensorBoard may start (``tensorboard_data_server --die-after-stdin``)
    exits when this process does, however it ends. It listens on localhost
    (6006 or the next free port); in a notebook the page is also shown inline.
    A second call for the same folder reuses the server.
    """
    logdir = str(pathlib.Path(logdir).resolve())
    if logdir not in _tensorboards:
        from tensorboard import program

        board = program.TensorBoard()
        board.configure(logdir=logdir)
        _tensorboards[logdir] = board.launch()
    url = _tensorboards[logdir]
    print(f"TensorBoard at {url} for {logdir}; served by this kernel, it stops when the kernel does.")
    try:
        import IPython

        if IPython.get_ipython() is not None:
            from tensorboard import notebook

            notebook.display(port=urllib.parse.urlparse(url).port, height=height)
    except ImportError:
        pass
    return url
