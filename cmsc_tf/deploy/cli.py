"""``cmsc-upscale``: super-resolve image files or folders from the command line.

    cmsc-upscale photo.png holidays/ --scale 2.5 --model savedmodels/vdsr/1 --out upscaled/
    python -m cmsc_tf.deploy.cli photo.png --scale 3 --tile 256 --self-ensemble

Each input gives ``<out>/<name>_x<scale>.<format>`` (a folder input keeps its
sub-folders under ``<out>``). Outputs are written to a temporary file and
renamed, so a failure never leaves a partial file. A file that cannot be
processed (missing, corrupt, unsupported, empty, absurd output size) gets a
one-line error naming it; the others are still processed, and the exit code
is 1 if any file failed (2 for a bad command line or model).
"""

import argparse
import pathlib
import sys

from absl.flags import argparse_flags

from cmsc_tf.deploy import loader, resampling
from cmsc_tf.io import images

# Tiles of 512 output pixels keep CMSC's activations (hundreds of bytes per
# pixel) to a few hundred MB whatever the image; tiling is exact (halo).
DEFAULT_TILE = 512
PROGRAM = "cmsc-upscale"


def _scale(text):
    try:
        return resampling.normalize_scale(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser():
    parser = argparse_flags.ArgumentParser(
        prog=PROGRAM,
        description="Super-resolve images with a trained CMSC (or VDSR) model.",
        # Only this command's own options: absl flags that other imported
        # modules define (e.g. training scripts' --out) must not collide.
        inherited_absl_flags=None,
    )
    parser.add_argument("inputs", nargs="+", help="image files or folders (folders: their images, recursively)")
    parser.add_argument("--scale", type=_scale, required=True, help="upscaling factor, 1 to 8, non-integer allowed")
    parser.add_argument("--model", default=None, help=f"SavedModel folder, .keras or .tflite (default: {loader.DEFAULT_MODEL})")
    parser.add_argument("--out", default="upscaled", help="output folder (created; default: ./upscaled)")
    parser.add_argument("--format", default="png", help="output file format/extension (default: png)")
    parser.add_argument(
        "--tile", type=_positive_int, default=DEFAULT_TILE,
        help=f"tile side in output pixels; bounds memory, exact (default: {DEFAULT_TILE})",
    )
    parser.add_argument("--self-ensemble", action="store_true", help="average over the 8 flips/rotations (8x slower)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"))
    return parser


def _image_extensions():
    import PIL.Image

    return set(PIL.Image.registered_extensions())


def collect_jobs(inputs, out_dir, scale, extension):
    """``[(input path, output path)]``: files as given, folders expanded to the image files inside.

    Outputs always land inside ``out_dir`` (a folder given as ``..`` or ``.``
    is named by its resolved name), and images already inside ``out_dir`` are
    not inputs, so a rerun does not upscale its own earlier outputs.
    """
    suffix = f"_x{scale:g}.{extension}"
    out_resolved = pathlib.Path(out_dir).resolve()
    jobs = []
    for entry in map(pathlib.Path, inputs):
        if entry.is_dir():
            known = _image_extensions()
            name = entry.resolve().name or "root"
            for path in sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in known):
                if out_resolved in path.resolve().parents:
                    continue
                relative = path.relative_to(entry)
                jobs.append((path, out_dir / name / relative.parent / (relative.stem + suffix)))
        else:
            jobs.append((entry, out_dir / (entry.stem + suffix)))
    return jobs


def _error(message):
    from tqdm import tqdm

    tqdm.write(f"{PROGRAM}: error: {message}", file=sys.stderr)


def _load_upscaler(args):
    from cmsc_tf.deploy.upscaler import Upscaler

    if args.model is None:
        model = loader.default_model_path()
        if not model.exists():
            raise FileNotFoundError(
                f"default model {loader.DEFAULT_MODEL} not found at {model} (it ships with the repository); "
                f"pass --model, e.g. --model savedmodels/vdsr/1"
            )
    else:
        model = args.model
    return Upscaler(model, tile=args.tile, self_ensemble=args.self_ensemble, precision=args.precision)


def _process(upscaler, source, target, scale):
    image = images.read_image(source)
    try:
        upscaler.output_size(image.shape[0], image.shape[1], scale)
    except ValueError as error:
        raise images.ImageError(f"{source}: {error}") from None
    result = upscaler.upscale(image, scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    images.write_image(target, result)


def run(args):
    """Runs a parsed command line; returns the exit code."""
    from tqdm import tqdm

    out_dir = pathlib.Path(args.out)
    extension = args.format.lower().lstrip(".")
    try:
        images.output_format(f"output.{extension}")
    except images.ImageError:
        _error(f"--format {args.format}: not a format Pillow can write")
        return 2
    try:
        upscaler = _load_upscaler(args)
    except (OSError, ValueError) as error:
        _error(f"cannot load model: {error}")
        return 2
    jobs = collect_jobs(args.inputs, out_dir, args.scale, extension)
    failures = 0
    seen = set()
    for source, target in tqdm(jobs, desc=PROGRAM, unit="image", file=sys.stderr, dynamic_ncols=True):
        try:
            if target in seen:
                raise images.ImageError(f"{source}: output {target} would overwrite another input's result")
            seen.add(target)
            _process(upscaler, source, target, args.scale)
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


def main():
    """Console-script entry point (setup.py: ``cmsc-upscale = cmsc_tf.deploy.cli:main``)."""
    sys.exit(run_cli(sys.argv[1:]))


if __name__ == "__main__":
    main()
