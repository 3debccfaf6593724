"""``python -m training.export``: ``cmsc-export`` run from a checkout (:mod:`cmsc_tf.deploy.export_cli`, its flags and usage)."""

from cmsc_tf import entry
from cmsc_tf.deploy import export_cli
from cmsc_tf.deploy.export_cli import __doc__  # noqa: F401  (absl's --help prints the main module's docstring)

if __name__ == "__main__":
    entry.run(export_cli.main, "training.export", flags_module=export_cli)
