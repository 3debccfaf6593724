"""The tf.distribute strategy that suits this machine, as `python -m training.main` flags.

Used by colab/train_cmsc.ipynb to pick the strategy from what the Colab
runtime has: a TPU gives --strategy=tpu, several GPUs --strategy=mirrored,
one GPU or none the default strategy (which already places the model on the
one GPU).
"""

import os
import pathlib

# How a TPU shows itself before TensorFlow connects to it: the address of a
# TPU node (older Colab runtimes; TPU_NAME on Cloud), or the accelerator
# device files of a TPU VM (current Colab TPU runtimes), whose TPU the
# resolver reaches as "local".
_TPU_NODE_ENVIRONMENT = ("COLAB_TPU_ADDR", "TPU_NAME")
TPU_VM_DEVICE_FILES = ("/dev/accel0", "/dev/vfio/0")


def strategy_flags(num_gpus=None, environ=None, device_files=TPU_VM_DEVICE_FILES):
    """["--strategy=..."] (plus "--tpu=local" on a TPU VM) for training.main."""
    environ = os.environ if environ is None else environ
    if any(pathlib.Path(path).exists() for path in device_files):
        return ["--strategy=tpu", "--tpu=local"]
    if any(environ.get(name) for name in _TPU_NODE_ENVIRONMENT):
        return ["--strategy=tpu"]  # the resolver finds the node from the environment
    if num_gpus is None:
        import tensorflow as tf

        num_gpus = len(tf.config.list_physical_devices("GPU"))
    return ["--strategy=mirrored"] if num_gpus > 1 else ["--strategy=default"]
