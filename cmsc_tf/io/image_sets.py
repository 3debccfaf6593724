"""The HR image sets by name, read from a datasets folder or from scikit-image.

The one image lister of the project. A set name is either a folder set of the
datasets folder (the layout of the shared ``datasets/``, :data:`LAYOUT_HELP`)
or one of the two halves of the embedded photographs of ``skimage.data``,
which need no folder and no network:

* ``skimage_train``: :data:`TRAIN_PHOTOS`;
* ``skimage_test``: :data:`TEST_PHOTOS`, held out: never trained on, and the
  embedded evaluation set (:func:`write_embedded_benchmark`).

Images come back exactly as :func:`cmsc_tf.io.images.read_image` returns them
(uint8 ``[H, W]`` for gray, ``[H, W, C]`` otherwise), so the grayscale fact
that the protocol's luminance rule needs is kept. NumPy and Pillow only (no
TensorFlow): the trainer, on any Keras backend, reads its data through
:func:`read_luminance_set`.

A folder set can be packed (:func:`pack_luminance_set`): its protocol
luminance written as 8-bit grayscale PNGs in the same layout under another
datasets folder. A gray image is its own luminance, so that folder is read by
the same functions and gives the trainer the same arrays, from about a third
of the bytes (a lent GPU host receives its training data this way).
"""

import os
import pathlib

from cmsc_tf.io import images
from cmsc_tf.numerics import color

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
DATA_DIR_ENV = "CMSC_DATA_DIR"

# Folder set name -> its folder under the datasets folder.
FOLDER_SETS = {
    "t91": "train/T91",
    "bsd200": "train/BSD200",
    "set5": "benchmark/Set5",
    "set14": "benchmark/Set14",
    "bsd100": "benchmark/BSD100",
    "urban100": "benchmark/Urban100",
    # Scene photographs in neither the training nor the benchmark sets: the
    # set that training runs validate on and choose settings by (JPEG, so
    # its numbers compare runs, not papers).
    "sunhays80": "validation/SunHays80",
}

# Photographs of skimage.data with a fixed split. Textures (brick, grass,
# gravel) are in the training half because they are real photographs with
# fine detail; documents, drawings and synthetic images are left out.
TRAIN_PHOTOS = ("camera", "coffee", "rocket", "moon", "immunohistochemistry",
                "stereo_motorcycle", "brick", "grass", "gravel")
TEST_PHOTOS = ("astronaut", "chelsea", "coins")  # coins is grayscale: exercises that rule
SKIMAGE_SETS = {"skimage_train": TRAIN_PHOTOS, "skimage_test": TEST_PHOTOS}

# The set name under which write_embedded_benchmark writes TEST_PHOTOS.
EMBEDDED_SET = "skimage"

LAYOUT_HELP = """\
Nothing is downloaded. Put the HR images (PNG, BMP, JPEG or TIFF) in a folder
laid out like this and pass it with --data_dir or the CMSC_DATA_DIR variable:

  <root>/train/T91/        91 images of Yang et al. 2010 ("91-image" set)
  <root>/train/BSD200/     the 200 training images of BSD300
                           (https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/)
  <root>/benchmark/Set5/   Set5 (Bevilacqua et al. 2012)
  <root>/benchmark/Set14/  Set14 (Zeyde et al. 2010)
  <root>/benchmark/BSD100/ the 100 BSD300 test images
  <root>/benchmark/Urban100/ Urban100 (Huang et al. 2015), optional
  <root>/validation/SunHays80/ 80 scene photographs of Sun and Hays 2012 (JPEG),
                           for validation while training

The sets are distributed with public super-resolution code, e.g. the SelfExSR
benchmark (https://github.com/jbhuang0604/SelfExSR) and the VDSR / LapSRN
project pages. Only the folders of the sets you use need to exist.
"""


# Errors are one line: they point to the layout instead of printing it.
_WHERE_LAYOUT = "the folder's layout and where to get the sets: cmsc_tf.io.image_sets.LAYOUT_HELP, docs/training.md"


def set_names():
    """Every set name: the folder sets, then ``skimage_train`` and ``skimage_test``."""
    return tuple(FOLDER_SETS) + tuple(SKIMAGE_SETS)


def list_images(folder):
    """The image files of ``folder`` (not recursive), sorted by name; clear error when none."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def resolve_data_dir(data_dir=None):
    """The datasets folder: the argument, else $CMSC_DATA_DIR, else None."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    return pathlib.Path(data_dir).expanduser() if data_dir else None


def set_folder(set_name, data_dir=None):
    """The folder of a folder set; ``ValueError`` for other names or no datasets folder,
    ``FileNotFoundError`` naming the folder when it is missing."""
    _check_set_name(set_name)
    if set_name not in FOLDER_SETS:
        raise ValueError(f"image set {set_name!r} is embedded, not read from a folder.")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(
            f"image set {set_name!r} is read from a local datasets folder: pass --data_dir or set "
            f"{DATA_DIR_ENV} ({_WHERE_LAYOUT})")
    folder = root / FOLDER_SETS[set_name]
    if not folder.is_dir():
        raise FileNotFoundError(f"image set {set_name!r}: folder {folder} not found ({_WHERE_LAYOUT})")
    return folder


def load_photo(name):
    """The uint8 array of one skimage.data photograph (left view for stereo pairs)."""
    import skimage.data  # imported here: only the embedded sets need it

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
        image = image[0]
    return image


def read_set(set_name, data_dir=None):
    """``[(name, uint8 array)]`` of a set in name order.

    Names are file names (``baby.png``) for folder sets and photograph names
    (``astronaut``) for the embedded sets; arrays are ``[H, W]`` for gray
    images and ``[H, W, C]`` otherwise, as :func:`cmsc_tf.io.images.read_image`
    returns them.
    """
    _check_set_name(set_name)
    if set_name in SKIMAGE_SETS:
        return [(name, load_photo(name)) for name in sorted(SKIMAGE_SETS[set_name])]
    return [(path.name, images.read_image(path)) for path in list_images(set_folder(set_name, data_dir))]


def read_luminance_set(set_name, data_dir=None):
    """``[(name, uint8 [H, W])]``: the protocol luminance of every image of a set.

    Grayscale stays as is, RGB goes through MATLAB's ``rgb2ycbcr``, alpha is
    dropped (:func:`cmsc_tf.numerics.color.luminance`).
    """
    return [(name, color.luminance(image)) for name, image in read_set(set_name, data_dir)]


def pack_luminance_set(set_name, out_root, data_dir=None, max_images=0):
    """Writes the protocol luminance of a folder set as grayscale PNGs in ``out_root``'s layout.

    ``max_images``: only the first N images in name order (0: all), for a
    validation set read with ``--val_max_images=N``. A PNG keeps its name, any
    other file gets ``.png`` appended, so the name order (which decides the
    first N, and the pairs drawn from (seed, step)) is the source's. Returns
    the folder written.
    """
    _check_set_name(set_name)
    if set_name not in FOLDER_SETS:
        raise ValueError(f"image set {set_name!r} is embedded: it needs no packing")
    source = list_images(set_folder(set_name, data_dir))
    source = source[:max_images] if max_images else source
    folder = pathlib.Path(out_root) / FOLDER_SETS[set_name]
    names = [path.name if path.suffix.lower() == ".png" else path.name + ".png" for path in source]
    for path, name in zip(source, names):
        images.write_image(folder / name, color.luminance(images.read_image(path)))
    if [path.name for path in list_images(folder)] != names:
        raise ValueError(f"{folder} holds other images, or the packed names sort differently from "
                         f"the images of {set_name!r}; pack into an empty folder")
    return folder


def write_embedded_benchmark(folder):
    """Writes the held-out photographs as PNGs in ``folder/<EMBEDDED_SET>``; returns ``folder``.

    The evaluation default when no data folder is given: it then runs
    anywhere, without the benchmark sets, on images no embedded run trained on.
    """
    for name, image in read_set("skimage_test"):
        images.write_image(pathlib.Path(folder) / EMBEDDED_SET / f"{name}.png", image)
    return folder


def _check_set_name(set_name):
    if set_name not in set_names():
        raise ValueError(f"unknown image set {set_name!r}; known: {', '.join(set_names())}")
