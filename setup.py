"""cmsc-tf: TensorFlow / Keras 3 implementation of the CMSC super-resolution network."""

import runpy

from setuptools import find_packages, setup

# The shipped models (cmsc_tf/models/presets.py) go into the wheel as package
# data: the checkout's savedmodels/ is mapped to the package cmsc_tf._savedmodels,
# taking only the presets' files (not other exports lying there). Read by path:
# importing cmsc_tf would need Keras at build time.
_presets = runpy.run_path("cmsc_tf/models/presets.py")
_MODELS_PACKAGE = f"cmsc_tf.{_presets['PACKAGE_DIR']}"

setup(
    name="cmsc-tf",
    version="0.1.0",
    description=(
        "Cascaded Multi-Scale Cross network (Hu et al. 2018) for single-image "
        "super-resolution, in TensorFlow / Keras 3."
    ),
    # training/ holds entry points run from a checkout (python -m training.main);
    # a top-level "training" package in site-packages would shadow others.
    packages=find_packages(include=["cmsc_tf", "cmsc_tf.*"]) + [_MODELS_PACKAGE],
    package_dir={_MODELS_PACKAGE: _presets["CHECKOUT_DIR"]},
    package_data={_MODELS_PACKAGE: _presets["package_files"]()},
    include_package_data=False,
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.18,<2.22",
        # training/lib/keras_hooks.py uses three private Keras hooks, each pinned by
        # tests/training/test_keras_hooks.py; widen once they pass on a newer Keras.
        "keras>=3.15,<3.16",
        "tensorflow-datasets>=4.9.7,<5",
        "numpy>=1.26,<3",
        "scikit-image>=0.24,<0.27",
        "absl-py>=2.1,<3",
        "pyrtools>=1.0.4,<2",
        "tqdm>=4.66,<5",
        "pillow>=10,<14",
        "scipy>=1.11,<2",
        "ai-edge-litert>=2.0,<3",
        "tensorboard>=2.18,<2.22",
    ],
    extras_require={
        "serving": ["tensorflow-serving-api>=2.18,<2.22"],
        "plots": ["matplotlib>=3.8,<4"],
        # training.main with KERAS_BACKEND=jax (e.g. a GPU host without TensorFlow,
        # where Keras, JAX and the non-TensorFlow requirements suffice; docs/training.md).
        "jax": ["jax>=0.10,<0.12"],
        "test": [
            "pytest>=8,<10",
            "pytest-xdist>=3.6,<4",
            "hypothesis>=6.100,<7",  # the fuzz tests of the image reader and the serving signature
            "tensorflow-serving-api>=2.18,<2.22",
            "nbclient>=0.10,<1",
            "nbformat>=5.9,<6",
            "ipykernel>=6.29,<8",
            "psutil>=5.9,<8",  # tests/test_notebooks.py: processes a notebook leaves behind
            "matplotlib>=3.8,<4",
            "jax>=0.10,<0.12",
        ],
    },
    entry_points={"console_scripts": [
        "cmsc-upscale = cmsc_tf.deploy.cli:main",
        "cmsc-evaluate = cmsc_tf.deploy.evaluate_cli:run",
        "cmsc-export = cmsc_tf.deploy.export_cli:run",
    ]},
)
