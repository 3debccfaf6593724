"""Runs train_lib.run in its own process and saves the final weights (for the tests).

    python tests/training_distributed_worker.py OUT.npz [--logical_cpus=2] -- MAIN_FLAGS...

`--logical_cpus` splits the CPU into that many logical devices before TF
starts, so that MirroredStrategy has several replicas on one machine.
"""

import sys

import numpy as np


def main(argv):
    out, rest = argv[1], argv[2:]
    split = rest.index("--")
    options, main_flags = rest[:split], rest[split + 1:]
    import tensorflow as tf

    for option in options:
        if option.startswith("--logical_cpus="):
            cpu = tf.config.list_physical_devices("CPU")[0]
            count = int(option.split("=")[1])
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    from absl import flags, logging

    logging.set_verbosity(logging.INFO)

    from training import main as training_main
    from training import train_lib

    flags.FLAGS(["worker", *main_flags])
    _, model = train_lib.run(training_main.config_from_flags())
    np.savez(out, *[np.asarray(w) for w in model.get_weights()])


if __name__ == "__main__":
    main(sys.argv)
