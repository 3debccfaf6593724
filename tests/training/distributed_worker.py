"""Runs trainer.run in its own process and saves the final weights (for the tests).

    python tests/training/distributed_worker.py OUT.npz [--logical_cpus=2] -- MAIN_FLAGS...

`--logical_cpus` (TensorFlow) splits the CPU into that many logical devices
before TF starts, so that MirroredStrategy has several replicas on one
machine. On JAX it prints how many devices hold the trained variables.
"""

import sys

import numpy as np


def main(argv):
    out, rest = argv[1], argv[2:]
    split = rest.index("--")
    options, main_flags = rest[:split], rest[split + 1:]
    for option in options:
        if option.startswith("--logical_cpus="):
            import tensorflow as tf

            cpu = tf.config.list_physical_devices("CPU")[0]
            count = int(option.split("=")[1])
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    import keras
    from absl import flags, logging

    logging.set_verbosity(logging.INFO)

    from training import main as training_main
    from training.lib import trainer

    flags.FLAGS(["worker", *main_flags])
    _, model = trainer.run(training_main.config_from_flags())
    np.savez(out, *[np.asarray(w) for w in model.get_weights()])
    if keras.backend.backend() == "jax":
        devices = {len(v.value.sharding.device_set) for v in model.trainable_variables}
        print(f"trained variables live on {sorted(devices)} device(s)", flush=True)


if __name__ == "__main__":
    main(sys.argv)
