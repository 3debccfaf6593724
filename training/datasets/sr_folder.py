"""TFDS builder for the super-resolution image sets, read from a local folder.

The folder is laid out like the project's shared `datasets/` directory:

    <root>/train/T91/*.png        <root>/benchmark/Set5/*.png
    <root>/train/BSD200/*.png     <root>/benchmark/Set14/*.png
                                  <root>/benchmark/BSD100/*.png
                                  <root>/benchmark/Urban100/*.png  (optional)

`<root>` is TFDS's manual directory (`DownloadConfig(manual_dir=root)`); the
builder never downloads anything. Each config is one set; each example is one
HR image (uint8, grayscale replicated to 3 channels with `grayscale=True`)
and its file name.
"""

import dataclasses


import tensorflow_datasets as tfds

from training.datasets import image_files, local_builder


@dataclasses.dataclass
class SrFolderConfig(tfds.core.BuilderConfig):
    """One image set: its folder under the manual dir and its split name."""

    subdir: str = ""
    split: str = "train"


def _config(name, subdir, split, description):
    return SrFolderConfig(name=name, subdir=subdir, split=split,
                          version=tfds.core.Version("1.0.0"), description=description)


class SrFolder(local_builder.LocalBuilder, skip_registration=True):
    """Super-resolution image sets from a local folder (no download)."""

    BUILDER_CONFIGS = [
        _config("t91", "train/T91", "train", "Yang et al. 2010, 91 training images"),
        _config("bsd200", "train/BSD200", "train", "the 200 BSD300 training images"),
        _config("set5", "benchmark/Set5", "test", "Set5 benchmark (Bevilacqua et al. 2012)"),
        _config("set14", "benchmark/Set14", "test", "Set14 benchmark (Zeyde et al. 2010)"),
        _config("bsd100", "benchmark/BSD100", "test", "the 100 BSD300 test images"),
        _config("urban100", "benchmark/Urban100", "test", "Urban100 (Huang et al. 2015)"),
    ]

    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Nothing is downloaded. Put the HR images (PNG, BMP, JPEG or TIFF) in a folder
laid out like this and pass it with --data_dir or the CMSC_DATA_DIR variable:

  <root>/train/T91/        91 images of Yang et al. 2010 ("91-image" set)
  <root>/train/BSD200/     the 200 training images of BSD300
                           (https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/)
  <root>/benchmark/Set5/   Set5 (Bevilacqua et al. 2012)
  <root>/benchmark/Set14/  Set14 (Zeyde et al. 2010)
  <root>/benchmark/BSD100/ the 100 BSD300 test images
  <root>/benchmark/Urban100/ Urban100 (Huang et al. 2015), optional

The sets are distributed with public super-resolution code, e.g. the SelfExSR
benchmark (https://github.com/jbhuang0604/SelfExSR) and the VDSR / LapSRN
project pages. Only the folders of the sets you use need to exist.
"""

    def _info(self):
        return self.dataset_info_from_configs(
            features=local_builder.image_features(),
            description="HR images of one super-resolution set, read from a local folder.",
        )

    def _split_generators(self, dl_manager):
        folder = dl_manager.manual_dir / self.builder_config.subdir
        return {self.builder_config.split: self._generate_examples(folder)}

    def _generate_examples(self, folder):
        for path in image_files.list_images(folder):
            image, grayscale = image_files.read_image(path)
            yield path.name, {"image": image, "grayscale": grayscale, "name": path.name}
