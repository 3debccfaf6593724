"""``cmsc-upscale``: super-resolve image files or folders from the command line.

    cmsc-upscale photo.png holidays/ --scale 2.5 --model vdsr --out upscaled/
    python -m cmsc_tf.deploy.cli photo.png --scale 3 --tile 256 --self-ensemble

Each input gives ``<out>/<name>_x<scale>.<format>`` (a folder input keeps its
sub-folders under ``<out>/<folder name>/``). Outputs are written to a hidden
temporary file (``.tmp-XXXXXXXX-<name>``) and renamed, so a failure or an
interruption never leaves a partial file.

Folders: their files with an image extension, recursively; hidden
temporary files left by a killed run are never inputs. ``--out`` may lie
inside an input folder (it is then not read, so a rerun does not upscale its
own outputs) but may not be an input folder or contain one: that is refused,
as outputs would mix with the inputs.

Exit codes:
  0  every image was written;
  1  some input failed: a missing, corrupt, unsupported or empty image, a
     FIFO/socket/device (never opened), an absurd output size, a folder with
     no images. Each gets a one-line error naming it; the others are still
     processed;
  2  a bad command line (one line: ``cmsc-upscale: error: ...``), model or
     ``--out`` (not a usable folder, or one that holds an input folder),
     refused before any image is processed;
  130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM: the outputs already
     written are complete, and no temporary file is left behind. Further
     signals while it ends are ignored (one line, whatever the number of
     Ctrl-C).

TensorFlow and Keras are loaded only for a model that needs them (a
SavedModel, as a preset at ``--precision float32`` is, or a ``.keras``
file): the presets' default dynamic-int8 LiteRT network runs with
NumPy, Pillow and ``ai_edge_litert`` alone, and an unknown ``--model`` is
refused at once, listing the presets. TensorFlow's C++ start-up lines (oneDNN,
CUDA driver notices) are hidden; ``--tf_log`` shows them (the name of the same switch in every command).
"""

import argparse
import os
import pathlib
import signal
import sys

import numpy as np
from absl.flags import argparse_flags

# Light modules only (no TensorFlow, no Keras): the command line is parsed,
# and --help or a usage error answered, before TensorFlow loads (run()).
from cmsc_tf import _quiet
from cmsc_tf.deploy import loader, scales  # loader imports NumPy and LiteRT, not TensorFlow
from cmsc_tf.deploy.tiling import DEFAULT_TILE, MAX_TILE, check_tile  # NumPy only
from cmsc_tf.io import atomic, images
from cmsc_tf.models import presets

PROGRAM = "cmsc-upscale"
# The output extensions --format takes: a fixed set, so that the value can
# never carry a path (a slash or "..") into the output names.
OUTPUT_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")


def _scale(text):
    try:
        return scales.normalize_scale(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _output_format(text):
    extension = text.lower().lstrip(".")
    if extension not in OUTPUT_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    return extension


def _tile(text):
    try:
        return check_tile(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels from 1 to {MAX_TILE}, "
                                         f"got {text}") from None


class _Parser(argparse_flags.ArgumentParser):
    """Usage errors in one line, ``cmsc-upscale: error: <message>`` (exit code 2), without the usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = _Parser(
        prog=PROGRAM,
        description="Super-resolve images with a trained CMSC (or VDSR) model.",
        epilog=__doc__[__doc__.index("Folders:"):],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Only this command's own options: absl flags that other imported
        # modules define (e.g. training scripts' --out) must not collide.
        inherited_absl_flags=None,
    )
    parser.add_argument("inputs", nargs="+", help="image files or folders (folders: their images, recursively)")
    parser.add_argument("--scale", type=_scale, required=True, help="upscaling factor, 1 to 8, non-integer allowed")
    parser.add_argument(
        "--model", default=None,
        help=f"a preset ({', '.join(presets.PRESETS)}; default: {presets.DEFAULT_PRESET}), "
             "or a SavedModel folder, .keras or .tflite file",
    )
    parser.add_argument("--out", default="upscaled", help="output folder (created; default: ./upscaled)")
    parser.add_argument(
        "--format", type=_output_format, default="png",
        help=f"output file extension, one of {', '.join(OUTPUT_FORMATS)} (default: png)",
    )
    parser.add_argument(
        "--tile", type=_tile, default=DEFAULT_TILE,
        help=f"tile side in output pixels, 1 to {MAX_TILE}; bounds memory; the same result as untiled in "
             f"float32, within 45 dB of it with the int8 default (default: {DEFAULT_TILE})",
    )
    parser.add_argument("--self-ensemble", action="store_true", help="average over the 8 flips/rotations (8x slower)")
    parser.add_argument(
        "--precision", default=None, choices=tuple(loader.PRECISIONS),
        help="default: dynamic_int8 for the presets cmsc_compact and cmsc_full (their int8 LiteRT file, "
             "about 3x faster on a CPU), float32 for other models; float32: the float32 network",
    )
    parser.add_argument("--tf_log", action="store_true",
                        help="show TensorFlow's C++ log lines (start-up notices, CUDA messages), hidden by default")
    return parser


def _image_extensions():
    import PIL.Image

    return set(PIL.Image.registered_extensions())


def _folder_images(folder, out_resolved):
    """Image files under ``folder``, not under ``out_resolved``, not temporary files of a killed run."""
    known = _image_extensions()
    return sorted(
        path for path in folder.rglob("*")
        # Not is_file(): a FIFO named x.png is kept, to be reported rather than silently dropped.
        if path.suffix.lower() in known and not path.is_dir() and not atomic.is_temporary(path)
        and out_resolved not in path.resolve().parents
    )


def collect_jobs(inputs, out_dir, scale, extension):
    """``([(input path, output path)], [error message])``: files as given, folders expanded.

    Outputs always land inside ``out_dir`` (a folder given as ``..`` or ``.``
    is named by its resolved name), and images already inside ``out_dir`` are
    not inputs, so a rerun does not upscale its own earlier outputs. A folder
    without images is an error.
    """
    suffix = f"_x{scale:g}.{extension}"
    out_resolved = pathlib.Path(out_dir).resolve()
    jobs, errors = [], []
    for entry in map(pathlib.Path, inputs):
        if entry.is_dir():
            name = entry.resolve().name or "root"
            paths = _folder_images(entry, out_resolved)
            if not paths:
                errors.append(f"{entry}: no images found in this folder")
            for path in paths:
                relative = path.relative_to(entry)
                jobs.append((path, out_dir / name / relative.parent / (relative.stem + suffix)))
        else:
            jobs.append((entry, out_dir / (entry.stem + suffix)))
    return jobs, errors


def check_out(inputs, out_dir):
    """Raises ValueError unless ``out_dir`` can hold the outputs: checked before any work."""
    atomic.check_output_folder(out_dir)
    out_resolved = pathlib.Path(out_dir).resolve()
    for entry in map(pathlib.Path, inputs):
        # Images under --out are not read, so an --out holding an input folder
        # would silently process nothing; and outputs would mix with inputs.
        if entry.is_dir() and (entry.resolve() == out_resolved or out_resolved in entry.resolve().parents):
            raise ValueError(
                f"{out_dir} is or contains the input folder {entry}; choose an --out outside it "
                "(or inside it: that folder is not read)"
            )


def _error(message):
    from tqdm import tqdm

    tqdm.write(f"{PROGRAM}: error: {message}", file=sys.stderr)


def _choose_model(args):
    """(model, precision) to run; a missing model raises FileNotFoundError naming the presets, in milliseconds."""
    if args.model is None:
        model = loader.default_model_path()
        if not model.exists():
            raise FileNotFoundError(
                f"default model {loader.DEFAULT_PRESET} not found at {model} (it ships with cmsc-tf); "
                f"pass --model, e.g. --model {loader.FALLBACK_PRESET} or a SavedModel folder"
            )
        model = loader.DEFAULT_PRESET  # by name, so that it runs at the preset's default precision
    else:
        model = args.model
        _check_saved_model_metadata(model)
    precision = loader.default_precision(model) if args.precision is None else args.precision
    loader.model_path(model, precision)
    return model, precision


def _load_upscaler(args, model, precision):
    from cmsc_tf.deploy.upscaler import Upscaler

    if loader.needs_tensorflow(model, precision):
        _quiet.load("tensorflow", tf_log=args.tf_log)
    return Upscaler(model, tile=args.tile, self_ensemble=args.self_ensemble, precision=precision)


def _check_saved_model_metadata(model):
    """Refuses a SavedModel folder that export_saved_model did not write (no cmsc_metadata.json).

    Such a graph may do anything when run, and its tiling halo is unknown.
    """
    if not os.path.isdir(model):  # a preset name or a file: no SavedModel, and no TensorFlow to load
        return
    from cmsc_tf.deploy import saved_model

    if not saved_model.read_metadata(saved_model.resolve_saved_model_dir(model)):
        raise ValueError(f"{model}: a SavedModel without {saved_model.METADATA_FILE}: cmsc-upscale runs only "
                         "SavedModels written by cmsc_tf (export_saved_model); a SavedModel runs its own graph, "
                         "so load only trusted ones (docs/serving.md)")


def _process(upscaler, source, target, scale):
    # A FIFO would block the batch forever in open(); a device could be endless.
    if os.path.exists(source) and not (os.path.isfile(source) or os.path.isdir(source)):
        raise images.ImageError(f"{source}: not a regular file (a FIFO, socket or device); not opened")
    # The output's size from the header: an absurd output is refused before decoding.
    image = images.read_image(source, check=lambda width, height: upscaler.output_size(height, width, scale))
    result = upscaler.upscale(image, scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    images.write_image(target, result)


def run(args):
    """Runs a parsed command line; returns the exit code."""
    from tqdm import tqdm

    try:
        model, precision = _choose_model(args)
    except (OSError, ValueError) as error:
        _error(f"cannot load model: {error}")
        return 2
    out_dir = pathlib.Path(args.out)
    extension = args.format
    try:
        images.output_format(f"output.{extension}")
    except images.ImageError:
        _error(f"--format {args.format}: not a format Pillow can write")
        return 2
    try:
        check_out(args.inputs, out_dir)
    except ValueError as error:
        _error(f"--out {args.out}: {error}")
        return 2
    jobs, errors = collect_jobs(args.inputs, out_dir, args.scale, extension)
    for message in errors:
        _error(message)
    if not jobs:  # nothing to do: say so without the model's load time
        return 1
    try:
        upscaler = _load_upscaler(args, model, precision)
        if not args.tf_log:
            # LiteRT announces its XNNPACK delegate on the first run: let that be now, quietly,
            # not in the middle of the progress bar's line.
            with _quiet.filtered_stderr():
                upscaler.network_y(np.zeros((16, 16, 1), np.float32))
    except (OSError, ValueError) as error:
        _error(f"cannot load model: {error}")
        return 2
    failures = len(errors)
    seen = set()
    # A context: an interruption closes the bar (ends its line) before its message is printed.
    with tqdm(jobs, desc=PROGRAM, unit="image", file=sys.stderr, dynamic_ncols=True) as progress:
        for source, target in progress:
            try:
                if target in seen:
                    raise images.ImageError(f"{source}: output {target} would overwrite another input's result")
                _process(upscaler, source, target, args.scale)
                seen.add(target)  # only a written result: a failed input's name stays free for the next
            except images.ImageError as error:
                failures += 1
                _error(str(error))
            except Exception as error:  # keep the batch going; one line, naming the file
                failures += 1
                _error(f"{source}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    return 1 if failures else 0


def run_cli(argv):
    """In-process entry point: ``argv`` without the program name; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    return run(args)


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised where the program is, so that `atomic_path` removes its temporary file.

    A BaseException, as KeyboardInterrupt: the batch's per-file ``except
    Exception`` must not swallow it.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame):
    # Once: the program is now ending. A second Ctrl-C would interrupt the ending itself (the
    # temporary file's removal, the progress bar's __del__, the interpreter's shutdown) with a
    # traceback of its own ("Exception ignored in ...").
    for repeated in (signal.SIGINT, signal.SIGTERM):
        signal.signal(repeated, signal.SIG_IGN)
    raise Interrupted(signum)


def main():
    """Console-script entry point (setup.py: ``cmsc-upscale = cmsc_tf.deploy.cli:main``).

    SIGTERM's default action kills the process on the spot, leaving the
    temporary file being written; as an exception, it unwinds like Ctrl-C.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupted)
    try:
        code = run_cli(sys.argv[1:])
    except Interrupted as interruption:
        print(f"{PROGRAM}: interrupted by {interruption}; the outputs written are complete, "
              "none is partial", file=sys.stderr)
        code = 128 + interruption.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
    sys.exit(code)


if __name__ == "__main__":
    main()
