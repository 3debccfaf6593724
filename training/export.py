"""``python -m training.export``: ``cmsc-export`` run from a checkout (:mod:`cmsc_tf.deploy.export_cli`, its flags and
usage), which also exports a training run (--model_dir) with :func:`training.lib.checkpointing.export_checkpoint`."""

from cmsc_tf import entry
from cmsc_tf.deploy import export_cli
from cmsc_tf.deploy.export_cli import __doc__  # noqa: F401  (absl's --help prints the main module's docstring)


def main(argv):
    from training.lib.checkpointing import export_checkpoint

    return export_cli.main(argv, export_run=export_checkpoint)


if __name__ == "__main__":
    entry.run(main, "training.export", flags_module=export_cli)
