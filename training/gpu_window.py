"""A lent GPU window: fine-tune the full CMSC on a GPU host for a fixed time, and bring it back.

The host (one H100 or H200, JAX and PyTorch, no TensorFlow, no network) runs
one command of at most 10 minutes over a copy of the checkout of at most
64 MiB, and sends back at most 8 files of at most 16 MiB (64 MiB in all)
written under $OUT. So the window has three steps, one subcommand each, and
a fourth that undoes the first:

1. Here: ``python -m training.gpu_window prepare`` writes ``.gpu_window/``
   (ignored by git): the run folder seeded from the shipped weights
   (``training.lib.checkpointing.seed_run``: model weights, no optimizer state),
   the training images packed as grayscale PNGs of their protocol luminance
   (``cmsc_tf.io.image_sets.pack_luminance_set``), the wheels of Keras and
   what it needs that the host lacks, and ``train.flags`` (the recipe,
   training/flags/gpu_window.flags, with the run's folders). Then it parks
   ``savedmodels/`` and ``checkpoints/`` (about 60 MB the window does not
   need) in ``.parked/``, out of git's index, checks that what travels fits,
   and prints the device call to make.
2. There, in the one device call (``carry: [".gpu_window"]``, ``timeout_s: 600``):
   ``python3 -m training.gpu_window run --out=$OUT --window_s=540``. It
   installs the wheels into /tmp/site, runs ``training.main`` on JAX with the
   time budget that leaves minutes to pack, stops it at the window's deadline
   if it is still running then (the last epoch end's checkpoint stays), and
   writes to $OUT: ``window.json`` (steps, seconds, pairs/s, FLOP/s and the
   fraction of the GPU's bf16 peak), ``train.log`` and the run folder as
   ``run.tar.000``, ``run.tar.001``, ... (parts of at most 15 MiB: the full
   CMSC with its Adam moments is about 52 MB).
3. Here: ``python -m training.gpu_window unpack --from=<files_at> --to=runs/gpu_window``
   joins the parts, checks their SHA-256 and replaces the run folder;
   ``python -m training.gpu_window unpark`` puts the parked files back.
   (Without this script: ``cat run.tar.* | tar -x -C runs/gpu_window``.)

Rerunning is resuming: ``prepare --run_dir=runs/gpu_window`` sends a run that
came back again (its weights, step, seconds and logs; the optimizer's moments
do not fit beside the data and start afresh), and ``run`` gives training.main
a time budget counted on from the run's seconds. ``docs/training.md``, "A
lent GPU window", has the whole procedure and how to evaluate and ship the
result. The CPU dry run of the same steps with a tiny model is
tests/training/test_gpu_window.py.
"""

import argparse
import hashlib
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

WORK_DIR = pathlib.Path(".gpu_window")
RECIPE = "training/flags/gpu_window.flags"
WEIGHTS = "savedmodels/cmsc_full.keras"
SITE = "/tmp/site"  # where the host's wheels are installed (the device notes' --target)
# Tracked folders the window does not need, parked out of what travels.
PARK_DIR = pathlib.Path(".parked")
PARKED = ("savedmodels", "checkpoints")
# Keras and its requirements that the host may lack (it has numpy, h5py,
# absl-py, rich, ml-dtypes, packaging); the versions installed here go.
WHEELS = ("keras", "namex", "optree")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
HOST_PYTHON = "3.12"

# The device tool's limits: what travels, and what comes back from $OUT.
TRAVEL_LIMIT = 64 * 2**20
OUT_FILES, OUT_FILE_LIMIT, OUT_LIMIT = 8, 16 * 2**20, 64 * 2**20
PART_SIZE = 15 * 2**20
SUMMARY, LOG, PARTS = "window.json", "train.log", "run.tar"

# Dense bf16 matrix-product rates measured on the lent machines (an
# 8192x8192x8192 product on random data: H200 788 TFLOP/s on 2026-10-28, H100
# 798 on 2026-11-13, per the lender's machine notes): the peak that the issue's
# 40 % target is a fraction of.
BF16_PEAK_TFLOPS = {"H200": 788.0, "H100": 798.0}
PEAK_SOURCE = "8192^3 bf16 matmul measured on the lent machines (H200 788, H100 798 TFLOP/s)"


class WindowError(Exception):
    """A step that cannot go on; the message says why (printed as one line)."""


# ----------------------------------------------------------------------------
# prepare (here)


def recipe_args(recipe, extra):
    """The training flags: the recipe file expanded (absl's reading) and `extra` after it."""
    from absl import flags

    if not pathlib.Path(recipe).is_file():
        raise WindowError(f"recipe flag file not found: {recipe}")
    return flags.FlagValues().read_flags_from_files([f"--flagfile={recipe}", *extra], force_gnu=False)


def flag_value(args, name, default=""):
    """The last value of --name in `args` (a flag given twice: the later one wins)."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else default


def pack_datasets(args, data_dir, out_root):
    """Packs the training sets and the validation images the run reads; returns the folders."""
    from cmsc_tf.io import image_sets

    if out_root.exists():
        shutil.rmtree(out_root)
    folders = [image_sets.pack_luminance_set(name, out_root, data_dir)
               for name in flag_value(args, "train_sets").split(",") if name]
    val_set = flag_value(args, "val_set")
    if val_set in image_sets.FOLDER_SETS:
        folders.append(image_sets.pack_luminance_set(
            val_set, out_root, data_dir, int(flag_value(args, "val_max_images", "0") or 0)))
    return folders


def download_wheels(folder):
    """The wheels of WHEELS, at the versions installed here, for the host's Python."""
    from importlib import metadata

    folder.mkdir(parents=True, exist_ok=True)
    for name in WHEELS:
        version = metadata.version(name)
        if any(folder.glob(f"{name}-{version}-*.whl")):
            continue
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--python-version", HOST_PYTHON, "--implementation", "cp", "-d", str(folder),
                   *[f"--platform={p}" for p in PLATFORMS], f"{name}=={version}"]
        if subprocess.run(command).returncode:
            raise WindowError(f"pip could not download {name}=={version} for Python {HOST_PYTHON}; "
                              f"download its wheel into {folder} by hand")


def git(root, *args):
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        raise WindowError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def park(root):
    """Moves PARKED to PARK_DIR and out of git's index; returns the folders moved."""
    root = pathlib.Path(root)
    present = [name for name in PARKED if (root / name).exists()]
    if not present:
        return []
    if (root / PARK_DIR).exists():
        raise WindowError(f"{root / PARK_DIR} exists: run 'python -m training.gpu_window unpark' first")
    if git(root, "diff", "--cached", "--name-only", "--", *present).strip():
        raise WindowError(f"{', '.join(present)} hold staged changes; commit or unstage them before parking")
    (root / PARK_DIR).mkdir()
    # Out of the index too: then git lists them as neither tracked nor untracked.
    git(root, "rm", "-r", "--cached", "--quiet", "--ignore-unmatch", "--", *present)
    for name in present:
        (root / name).rename(root / PARK_DIR / name)
    return present


def unpark(root):
    """Undoes `park`: the folders back in place and in the index as committed; returns them."""
    root = pathlib.Path(root)
    if not (root / PARK_DIR).is_dir():
        return []
    names = sorted(p.name for p in (root / PARK_DIR).iterdir())
    clash = [name for name in names if (root / name).exists()]
    if clash:
        raise WindowError(f"{', '.join(clash)} exist(s) beside {PARK_DIR}; move them away and unpark again")
    for name in names:
        (root / PARK_DIR / name).rename(root / name)
    git(root, "reset", "--quiet", "--", *names)
    (root / PARK_DIR).rmdir()
    return names


def travelling_bytes(root, carried=()):
    """Bytes the device call sends: tracked and untracked-not-ignored files, and `carried`."""
    root = pathlib.Path(root)
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    total = sum((root / name).stat().st_size for name in set(listed) if name and (root / name).is_file())
    for path in carried:
        path = root / path
        total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
            path.stat().st_size if path.exists() else 0
    return total


def prepare(options, extra):
    work = pathlib.Path(options.work_dir)
    args = recipe_args(options.recipe, extra)
    data_dir = options.data_dir or os.environ.get("CMSC_DATA_DIR") or "../shared/datasets"
    from training.lib import checkpointing

    run_dir = work / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a copy made by the last prepare; the runs themselves live elsewhere
    source = options.run_dir if options.run_dir else options.weights
    if not pathlib.Path(source).exists():
        raise WindowError(f"{source} not found" + (" (parked? run 'python -m training.gpu_window unpark')"
                                                   if not options.run_dir else ""))
    try:
        state = checkpointing.seed_run(run_dir, source)
    except (ValueError, OSError) as error:
        raise WindowError(str(error)) from None
    print(f"run folder {run_dir}: step {state['step']} from {source}", flush=True)
    try:
        folders = pack_datasets(args, data_dir, work / "datasets")
    except (ValueError, OSError) as error:
        raise WindowError(str(error).splitlines()[0]) from None
    print(f"packed {', '.join(str(f) for f in folders)}", flush=True)
    train_flags = [f"--flagfile={options.recipe}", *extra, f"--model_dir={run_dir}",
                   f"--data_dir={work / 'datasets'}"]
    (work / "train.flags").write_text("\n".join(train_flags) + "\n")
    if options.wheels:
        download_wheels(work / "wheels")
    if options.park:
        moved = park(".")
        if moved:
            print(f"parked {', '.join(moved)} in {PARK_DIR} (put back: python -m training.gpu_window unpark)")
        size = travelling_bytes(".", [work])
        print(f"the device call sends {size / 2**20:.1f} MiB (limit {TRAVEL_LIMIT / 2**20:.0f})")
        if size > TRAVEL_LIMIT:
            raise WindowError(f"{size / 2**20:.1f} MiB would travel, more than {TRAVEL_LIMIT / 2**20:.0f}; "
                              "ignore or park more")
    print(f"device call: carry [\"{work}\"], timeout_s 600, command:\n"
          f"  PYTHONUNBUFFERED=1 python3 -m training.gpu_window run --out=$OUT --window_s=540 "
          f"--work_dir={work}")


# ----------------------------------------------------------------------------
# run (on the GPU host)


def install_wheels(folder):
    """Installs the carried wheels into SITE; returns the folder to put on the path (None: none)."""
    wheels = sorted(str(p) for p in pathlib.Path(folder).glob("*.whl"))
    if not wheels:
        return None
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--target", SITE, *wheels]
    if subprocess.run(command).returncode:
        raise WindowError(f"pip could not install {', '.join(wheels)}")
    return SITE


def read_json(path, default=None):
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else default


def gpu_name():
    """The GPU's name from nvidia-smi, or None where there is none."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else None


def train(command, env, log_path, deadline):
    """Runs `command`, its output to `log_path` and stdout; SIGINT at `deadline`. Returns (rc, stopped)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)

    def copy(log):
        for line in process.stdout:
            log.write(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    with open(log_path, "w") as log:
        reader = threading.Thread(target=copy, args=(log,))
        reader.start()
        stopped = False
        try:
            returncode = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Ctrl-C: training.main ends with its last epoch end's checkpoint in place.
            stopped = True
            process.send_signal(signal.SIGINT)
            try:
                returncode = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
        reader.join()
    return returncode, stopped


def pack_run(run_dir, out):
    """The run folder (state, the weights it names, settings, logs) as tar parts in `out`; (names, sha256)."""
    from training.lib import checkpointing

    state = checkpointing.read_state(run_dir)
    names = [state["weights"], checkpointing.STATE_FILE, *checkpointing.RUN_FILES, checkpointing.SUMMARY_FILE]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in names:
            if (pathlib.Path(run_dir) / name).exists():
                archive.add(pathlib.Path(run_dir) / name, arcname=name)
    data = buffer.getvalue()
    parts = [f"{PARTS}.{i:03d}" for i in range(-(-len(data) // PART_SIZE))]
    if len(parts) > OUT_FILES - 2 or len(data) > OUT_LIMIT - 2**20:
        raise WindowError(f"the run folder is {len(data) / 2**20:.1f} MiB: more than $OUT brings back")
    for i, name in enumerate(parts):
        (pathlib.Path(out) / name).write_bytes(data[i * PART_SIZE:(i + 1) * PART_SIZE])
    return parts, hashlib.sha256(data).hexdigest()


def log_rows(run_dir, after_step):
    """The CSV log's (step, seconds) rows of steps past `after_step`."""
    from training.lib import checkpointing, curves

    path = pathlib.Path(run_dir) / checkpointing.LOG_FILE
    if not path.exists():
        return []
    return [(int(row["step"]), float(row["seconds"])) for row in curves.read_rows(path)
            if int(row["step"]) > after_step]


def flops_per_step(config):
    """3 x forward convolution FLOPs per pixel x patch^2 x batch, as benchmarks/training_flops.py counts."""
    import cmsc_tf
    from benchmarks.training_flops import conv_flops_per_pixel

    model = cmsc_tf.build_model(config["variant"], **config["model_overrides"])
    return 3 * conv_flops_per_pixel(model) * config["patch_size"] ** 2 * config["batch_size"]


def throughput(before, after, rows, config, peak_tflops):
    """The window's numbers: steps, training seconds, pairs/s and FLOP/s, overall and steady."""
    steps = after.get("step", 0) - before.get("step", 0)
    seconds = after.get("seconds", 0.0) - before.get("seconds", 0.0)
    summary = {"steps": steps, "step": after.get("step", 0), "train_seconds": round(seconds, 2),
               "batch_size": config["batch_size"], "patch_size": config["patch_size"],
               "pairs_per_s": round(steps * config["batch_size"] / seconds, 2) if seconds > 0 else None}
    # Steady: from the first report point on, leaving out the first epoch's compilation.
    steady = None
    if len(rows) >= 2 and rows[-1][1] > rows[0][1]:
        steady = (rows[-1][0] - rows[0][0]) * config["batch_size"] / (rows[-1][1] - rows[0][1])
    summary["steady_pairs_per_s"] = round(steady, 2) if steady else None
    try:
        flops = flops_per_step(config)
    except Exception as error:  # the numbers above still come back
        summary["flops_error"] = f"{type(error).__name__}: {error}"
        return summary
    rate = (steady or 0) / config["batch_size"] * flops
    summary.update(flops_per_step=flops, steady_tflops=round(rate / 1e12, 3),
                   peak_tflops=peak_tflops,
                   fraction_of_peak=round(rate / 1e12 / peak_tflops, 4) if peak_tflops and steady else None)
    return summary


def run(options, extra):
    start = time.monotonic()
    work, out = pathlib.Path(options.work_dir), pathlib.Path(options.out)
    if not (work / "train.flags").is_file():
        raise WindowError(f"{work / 'train.flags'} not found: run 'python -m training.gpu_window prepare' "
                          "here first and carry its folder")
    out.mkdir(parents=True, exist_ok=True)
    site = install_wheels(work / "wheels")
    if site:
        sys.path.insert(0, site)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.getcwd(), env.get("PYTHONPATH")]))
    run_dir = work / "run"
    from training.lib import checkpointing

    before = checkpointing.read_state(run_dir) or {"step": 0}
    train_s = options.train_s or options.window_s - (time.monotonic() - start) - options.reserve_s
    if train_s <= 0:
        raise WindowError(f"--window_s={options.window_s} leaves no training time after --reserve_s="
                          f"{options.reserve_s}")
    budget = float(before.get("seconds", 0.0)) + train_s
    command = [sys.executable, "-m", "training.main", f"--flagfile={work / 'train.flags'}",
               f"--time_budget_s={budget:.0f}", *extra]
    print(f"gpu_window: training for {train_s:.0f} s (budget {budget:.0f} s of the run), from step "
          f"{before['step']}", flush=True)
    deadline = start + options.window_s - options.pack_s
    returncode, stopped = train(command, env, out / LOG, deadline)
    after = checkpointing.read_state(run_dir) or {"step": 0}
    parts, sha256 = pack_run(run_dir, out)
    trained = read_json(run_dir / checkpointing.SUMMARY_FILE, {})
    name = gpu_name()
    peak = options.peak_tflops or next((v for k, v in BF16_PEAK_TFLOPS.items() if name and k in name), None)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the count needs no GPU
    summary = {"device": name or "cpu", "train_returncode": returncode, "stopped_at_deadline": stopped,
               "stopped_by_budget": bool(trained.get("stopped_by_budget")) and trained.get("step") == after["step"],
               **throughput(before, after, log_rows(run_dir, before["step"]), read_json(run_dir / checkpointing.CONFIG_FILE),
                            peak),
               "peak_source": PEAK_SOURCE if not options.peak_tflops else "--peak_tflops",
               "psnr": trained.get("psnr") if trained.get("step") == after["step"] else None,
               "time_budget_s": round(budget), "parts": parts, "sha256": sha256,
               "wall_s": round(time.monotonic() - start, 1)}
    (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1), flush=True)
    if returncode and not stopped:
        raise WindowError(f"training.main failed (exit status {returncode}); {out / LOG} says why")


# ----------------------------------------------------------------------------
# unpack (here)


def unpack(options):
    source, target = pathlib.Path(options.source), pathlib.Path(options.to)
    summary = read_json(source / SUMMARY)
    if summary is None:
        raise WindowError(f"{source / SUMMARY} not found: not the files of a window")
    missing = [p for p in summary["parts"] if not (source / p).is_file()]
    if missing:
        raise WindowError(f"{source} lacks {', '.join(missing)}")
    data = b"".join((source / p).read_bytes() for p in summary["parts"])
    if hashlib.sha256(data).hexdigest() != summary["sha256"]:
        raise WindowError(f"the parts in {source} do not join to the run folder that was packed (SHA-256 differs)")
    fresh = target.with_name(target.name + ".unpacking")
    if fresh.exists():
        shutil.rmtree(fresh)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(fresh, filter="data")
    if target.exists():
        shutil.rmtree(target)
    fresh.rename(target)
    print(f"{target}: step {summary['step']} ({summary['steps']} steps in the window)")


# ----------------------------------------------------------------------------


def parser():
    main = argparse.ArgumentParser(prog="python -m training.gpu_window",
                                   description=__doc__.split("\n\n", 1)[0])
    commands = main.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="here: seed the run, pack the data, park, print the device call")
    prep.add_argument("--weights", default=WEIGHTS, help="the .keras model a new window starts from")
    prep.add_argument("--run_dir", default="", help="a run folder that came back, to send again")
    prep.add_argument("--data_dir", default="", help="datasets folder (default $CMSC_DATA_DIR, else ../shared/datasets)")
    prep.add_argument("--recipe", default=RECIPE, help="the training flag file")
    prep.add_argument("--no_wheels", dest="wheels", action="store_false", help="do not download wheels")
    prep.add_argument("--no_park", dest="park", action="store_false", help="do not park (a dry run here)")
    host = commands.add_parser("run", help="on the GPU host: train within the window, write $OUT")
    host.add_argument("--out", required=True, help="the folder that comes back ($OUT)")
    host.add_argument("--window_s", type=float, default=540, help="wall seconds until $OUT must be complete")
    host.add_argument("--reserve_s", type=float, default=120,
                      help="of the window, seconds not trained: start-up of training.main (imports, data "
                           "preparation) and packing")
    host.add_argument("--pack_s", type=float, default=45, help="seconds before the window's end at which "
                      "training still running is stopped")
    host.add_argument("--train_s", type=float, default=0, help="train this many seconds instead (a dry run)")
    host.add_argument("--peak_tflops", type=float, default=0, help="the bf16 peak (default: by GPU name)")
    back = commands.add_parser("unpack", help="here: join the parts into the run folder")
    back.add_argument("--from", dest="source", required=True, help="the folder the files came back to")
    back.add_argument("--to", default="runs/gpu_window", help="the run folder to (re)place")
    commands.add_parser("unpark", help="here: put the parked folders back")
    for command in (prep, host):
        command.add_argument("--work_dir", default=str(WORK_DIR), help="the folder that travels")
    return main


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # Training flags after "--" go to training.main (prepare writes them into train.flags).
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    options = parser().parse_args(own)
    try:
        if options.command == "prepare":
            prepare(options, extra)
        elif options.command == "run":
            run(options, extra)
        elif options.command == "unpack":
            unpack(options)
        else:
            names = unpark(".")
            print(f"put back {', '.join(names)}" if names else "nothing is parked")
    except WindowError as error:
        sys.exit(f"training.gpu_window: error: {error}")


if __name__ == "__main__":
    main()
