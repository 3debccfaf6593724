"""The notebooks of colab/: committed without outputs, and each runs top to bottom.

The slow tests execute every notebook with nbclient on the CPU, from the
repository root, with small sizes put into its parameter cell, and fail on
any cell error. A cell appended after the notebook's own then checks what
the notebook produced. Every process the kernel started must have ended with
the kernel (:func:`_no_leftover_processes`): a notebook that leaves, say, a
TensorBoard server behind fails its test, and the test ends those processes.
"""

import contextlib
import json
import pathlib
import sys

import numpy as np
import pytest

from cmsc_tf.deploy import loader

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ("upscale_quickstart", "train_cmsc", "reproduce_table3")
# Per notebook, on 2 CPU cores; generous against a shared machine.
CELL_TIMEOUT_S = 300
# Hang guards, not grace periods: the kernel and the processes it started are
# waited for until they exit (the exit itself is the event), and a process
# still running after this long never will, whatever the machine's load.
KERNEL_EXIT_S = 30
LEFTOVER_S = 300


def _load(name):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(REPO_ROOT / "colab" / f"{name}.ipynb", as_version=4)


def _parameter_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_stripped_and_valid(name):
    import nbformat

    notebook = _load(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: outputs committed"
            assert cell.execution_count is None, f"{name}: execution count committed"
    parameters = _parameter_cell(notebook)
    assert notebook.cells.index(parameters) < 3, "parameters come first, before any work"
    # Notebooks call the library: no model, layer or data pipeline of their own.
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    for forbidden in ("keras.layers", "keras.Sequential", "tf.data.", "build_model(", "class "):
        assert forbidden not in code, f"{name}: defines its own model/pipeline code ({forbidden})"


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
    """Kernels that run this interpreter (the venv the package is installed in), whatever is on PATH."""
    pytest.importorskip("nbclient")
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / "python3", overrides={"display_name": "test python3"})
    spec = json.loads((kernels / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return lambda: KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _execute(name, parameters, checks, kernel_manager_factory):
    """Runs the notebook with ``parameters`` in place of its parameter cell, then ``checks``."""
    import nbclient
    import nbformat

    notebook = _load(name)
    cell = _parameter_cell(notebook)
    defined = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and line[0].isalpha()}
    unknown = set(parameters) - defined
    assert not unknown, f"{name} has no parameters {unknown}"
    cell.source += "\n# Injected by tests/test_notebooks.py\n" + "\n".join(
        f"{key} = {value!r}" for key, value in parameters.items()
    )
    notebook.cells.append(nbformat.v4.new_code_cell(checks))
    km = kernel_manager_factory()
    with _no_leftover_processes(km) as collect:
        client = nbclient.NotebookClient(
            notebook,
            km=km,
            timeout=CELL_TIMEOUT_S,
            resources={"metadata": {"path": str(REPO_ROOT)}},
            on_cell_executed=collect,  # after each cell, while the kernel still runs
        )
        client.execute()  # raises CellExecutionError on any cell error
    return notebook


@contextlib.contextmanager
def _no_leftover_processes(km):
    """Ends the kernel of ``km`` after the block; fails if a process it started outlives it.

    Yields ``collect``, to be called while the kernel runs (nbclient's
    ``on_cell_executed`` hook): it records the kernel's descendants as they are
    then (a detached server such as ``%tensorboard``'s is still the kernel's
    child at that point). After the block, also when it raised, the kernel
    process alone is killed, as when it crashes, is killed for memory or loses
    its parent (how the suite's kernels used to end, at pytest's exit): what a
    notebook starts must end with its kernel without the kernel's help (a
    graceful shutdown would have ipykernel terminate its process group, and
    hide the leftovers). The test then waits for the recorded processes to
    exit, woken by each exit (:func:`_wait_for_exits`); any still running
    after the hang guard ``LEFTOVER_S`` are terminated, then killed, and the
    test fails naming them.
    """
    import psutil  # in the test extra: the check must not be skipped

    started = {}  # pid -> psutil.Process, which also tells a reused pid apart

    def collect(**_):
        try:
            kernel = psutil.Process(km.provisioner.pid)
            descendants = kernel.children(recursive=True)
        except (AttributeError, psutil.NoSuchProcess):  # no kernel (yet, any more)
            return
        for process in descendants:
            started.setdefault(process.pid, process)

    def alive(processes):
        def running(process):
            try:
                return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False
        return [p for p in processes if running(p)]

    leftovers = []
    try:
        yield collect
    finally:
        collect()
        kernel = km.provisioner.process if km.has_kernel else None
        if kernel is not None:
            kernel.kill()  # the kernel process only, not its process group
            kernel.wait(timeout=KERNEL_EXIT_S)
        processes = list(started.values())
        _wait_for_exits(alive(processes), LEFTOVER_S)
        for process in alive(processes):
            with contextlib.suppress(psutil.Error):
                leftovers.append(f"{process.pid}: {' '.join(process.cmdline())[:200]}")
                process.terminate()
        _, survivors = psutil.wait_procs(alive(processes), timeout=5)
        for process in survivors:
            with contextlib.suppress(psutil.Error):
                process.kill()
        if km.has_kernel:
            km.shutdown_kernel(now=True)  # jupyter_client's bookkeeping: connection file, ports
    assert not leftovers, "processes started by the notebook outlived its kernel:\n" + "\n".join(leftovers)


def _wait_for_exits(processes, hang_guard_s):
    """Returns once every one of ``processes`` (psutil) has exited, woken by the exits themselves
    (a pidfd becomes readable when its process ends), or after ``hang_guard_s``."""
    import os
    import select

    poller, descriptors = select.poll(), []
    for process in processes:
        try:
            descriptor = os.pidfd_open(process.pid)
        except ProcessLookupError:  # gone already
            continue
        descriptors.append(descriptor)
        poller.register(descriptor, select.POLLIN)
    try:
        waiting = set(descriptors)
        while waiting:
            events = poller.poll(hang_guard_s * 1000)
            if not events:
                return
            for descriptor, _ in events:
                poller.unregister(descriptor)
                waiting.discard(descriptor)
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


@pytest.fixture
def notebook_env(monkeypatch, shared_dir):
    # The kernel and the scripts it starts inherit this environment.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("CMSC_DATA_DIR", str(shared_dir / "datasets"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.mark.slow
def test_upscale_quickstart_runs(tmp_path, notebook_env, kernel_manager_factory):
    import PIL.Image
    import skimage.data

    user_image = tmp_path / "mine.png"
    PIL.Image.fromarray(skimage.data.coffee()[100:140, 200:250]).save(user_image)
    checks = f"""
assert str(model_dir).endswith(({loader.DEFAULT_MODEL!r}, {loader.FALLBACK_MODEL!r})), model_dir
assert [r["name"] for r in results] == ["astronaut", "chelsea"]
for r in results:
    assert r["sr"].shape == r["hr"].shape == r["bicubic"].shape
    # A trained network beats bicubic on a photograph at x2.
    assert r["psnr_sr"] > r["psnr_bicubic"] + 0.3, (r["name"], r["psnr_sr"], r["psnr_bicubic"])
"""
    output_dir = tmp_path / "upscaled"
    _execute(
        "upscale_quickstart",
        {"SCALE": 2, "PHOTOS": ["astronaut", "chelsea"], "CROP": 96, "USER_IMAGE": str(user_image),
         "OUTPUT_DIR": str(output_dir)},
        checks,
        kernel_manager_factory,
    )
    written = np.asarray(PIL.Image.open(output_dir / "mine_x2.png"))
    assert written.shape == (80, 100, 3)


@pytest.mark.slow
def test_train_cmsc_runs(tmp_path, notebook_env, kernel_manager_factory):
    work = tmp_path / "work"
    checks = """
import numpy as np
from cmsc_tf.io import image_sets
from cmsc_tf.io.images import read_image
assert [(r["dataset"], r["scale"]) for r in evaluation] == [("Set5", 2)]
assert [i["name"] for i in evaluation[0]["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
# Five training steps leave the model far from trained (below bicubic), so its scores are
# checked against the network itself: the protocol run here on the loaded Keras model.
# Two float32 executions agree to about 1e-5 (on 0..1), which moves a PSNR of RMSE e by
# at most (20 / ln 10) 1e-5 / e.
def predict(x):
    final = model(x[None, :, :, None].astype("float32"), training=False)[-1]
    return protocol.to_image(keras.ops.convert_to_numpy(final), x.shape)
for path, scored in zip(image_sets.list_images(f"{data_dir}/benchmark/Set5"), evaluation[0]["images"]):
    direct = protocol.score_image(protocol.hr_luminance(read_image(path), 2), 2, predict, ("psnr",))[0]["psnr"]
    assert abs(scored["psnr"] - direct) <= 8.686e-5 / 10 ** (-direct / 20), (path, scored, direct)
# The SavedModel and the int8 file run the same network: their luminances differ by less
# than the output's own step, one grey level (RMS).
difference = color.luminance(outputs["SavedModel"]).astype(float) - color.luminance(outputs["TFLite dynamic_int8"])
assert np.sqrt(np.mean(difference ** 2)) < 1.0, (np.abs(difference).max(), tflite_psnr)
assert full_flags[:2] == ["--flagfile=cmsc.flags", "--strategy=default"], full_flags
"""
    _execute(
        "train_cmsc",
        {"QUICK_OVERRIDES": ["--epochs=1", "--steps_per_epoch=5", "--val_scales=2", "--val_max_images=1",
                             "--image_summaries=0", "--bn_recalibration_batches=2"],
         "WORK_DIR": str(work), "EVAL_DATASETS": ["Set5"], "EVAL_SCALES": [2]},
        checks,
        kernel_manager_factory,
    )
    assert (work / "export" / "cmsc_quick.keras").is_file()
    assert (work / "savedmodels" / "cmsc_quick" / "1" / "saved_model.pb").is_file()
    assert (work / "cmsc_quick_dynamic_int8.tflite").stat().st_size > 10_000


@pytest.mark.slow
def test_reproduce_table3_runs(tmp_path, notebook_env, kernel_manager_factory):
    results = tmp_path / "results"
    checks = """
assert "| Bicubic (ours) | 33.68 / 0.9304 |" in table, table
assert "| Bicubic (paper) | 33.68 / 0.9304 |" in table, table
assert "| VDSR (paper) | 37.53 / 0.9587 |" in table, table
assert "| CMSC (paper) | 37.89 / 0.9605 |" in table, table
"""
    _execute(
        "reproduce_table3",
        {"DATASETS": ["Set5"], "SCALES": [2], "METRICS": ["psnr", "ssim"], "RESULTS_DIR": str(results)},
        checks,
        kernel_manager_factory,
    )
    # The paper's Bicubic row through the notebook's run of training.evaluate, and the
    # public VDSR weights at the 37.62 dB that datasets/README.md gives for them.
    bicubic = json.loads((results / "bicubic.json").read_text())["results"][0]
    vdsr = json.loads((results / "vdsr.json").read_text())["results"][0]
    assert (bicubic["dataset"], bicubic["scale"]) == ("Set5", 2)
    assert abs(bicubic["psnr"] - 33.68) <= 0.01 and abs(bicubic["ssim"] - 0.9304) <= 0.0005
    assert abs(vdsr["psnr"] - 37.62) <= 0.01
