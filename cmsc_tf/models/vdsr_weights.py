"""Loads the public trained VDSR weights into the `vdsr` variant.

The file holds arrays `conv00` .. `conv19` in HWIO layout (Kim et al. 2016:
20 conv 3x3 layers without bias, ReLU between them, output added to the
input), which map onto `build_model("vdsr")` as: `conv00` -> the feature
extraction conv, `conv01` .. `conv18` -> the 18 plain modules of
`subnetwork_1`, `conv19` -> the reconstruction conv.
"""

import os

import numpy as np


def _vdsr_kernels(model):
    if model.module_type != "conv" or model.batch_norm or model.use_bias:
        raise ValueError(
            "load_vdsr_weights needs a model built with build_model('vdsr') "
            "(plain convs, no batch norm, no bias)"
        )
    kernels = [model.get_layer("feature_extraction").conv.kernel]
    kernels += [block.conv.kernel for block in model.get_layer("subnetwork_1").blocks]
    kernels.append(model.get_layer("reconstruction_1").kernel)
    return kernels


def load_vdsr_weights(model, path):
    """Assigns the VDSR arrays of `path` (an `.npz`) to `model`; returns it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VDSR weights not found: {path}")
    try:
        arrays = np.load(path)
        names = sorted(k for k in arrays.files if k.startswith("conv"))
    except Exception as err:  # np.load raises several types on corrupt files
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err
    kernels = _vdsr_kernels(model)
    if len(names) != len(kernels):
        raise ValueError(
            f"{path} holds {len(names)} conv arrays but the model has {len(kernels)} "
            f"convolutions (build_model('vdsr', num_modules={len(names) - 2}) fits it)"
        )
    for name, kernel in zip(names, kernels):
        value = arrays[name]
        if tuple(value.shape) != tuple(kernel.shape):
            raise ValueError(
                f"{path}: {name} has shape {value.shape}, the model expects "
                f"{tuple(kernel.shape)} (HWIO layout)"
            )
        kernel.assign(value.astype(kernel.dtype))
    return model
