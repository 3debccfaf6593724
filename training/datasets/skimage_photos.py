"""TFDS builder for the embedded default data: photographs shipped in skimage.data.

These files are part of the scikit-image wheel, so the quick configuration
trains and validates on a fresh machine with no dataset folder and no network.
The split is fixed: the held-out `test` images are never trained on.
Textures (brick, grass, gravel) are kept in `train` because they are real
photographs with fine detail; documents, drawings and synthetic images of
skimage.data are left out.
"""

import tensorflow_datasets as tfds

from training.datasets import image_files, local_builder

# name -> how to get the image from skimage.data (function, index into a tuple result)
TRAIN_PHOTOS = ("camera", "coffee", "rocket", "moon", "immunohistochemistry",
                "stereo_motorcycle", "brick", "grass", "gravel")
TEST_PHOTOS = ("astronaut", "chelsea", "coins")  # coins is grayscale: exercises that rule


def load_photo(name):
    """The uint8 array of one skimage.data photograph (left view for stereo pairs)."""
    import skimage.data  # imported here: only preparing the dataset needs it

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle -> (left, right, disparity)
        image = image[0]
    return image


class SkimagePhotos(local_builder.LocalBuilder, skip_registration=True):
    """Photographs of skimage.data with a fixed train / test split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=local_builder.image_features(),
            description="Photographs shipped with scikit-image (skimage.data).",
            homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the images ship with scikit-image
        return {"train": self._generate_examples(TRAIN_PHOTOS),
                "test": self._generate_examples(TEST_PHOTOS)}

    def _generate_examples(self, names):
        for name in names:
            image, grayscale = image_files.as_rgb_uint8(load_photo(name))
            yield name, {"image": image, "grayscale": grayscale, "name": name}
