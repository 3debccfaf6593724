"""``python -m training.evaluate``: ``cmsc-evaluate`` run from a checkout (:mod:`cmsc_tf.deploy.evaluate_cli`, its flags and usage)."""

from cmsc_tf import entry
from cmsc_tf.deploy import evaluate_cli as cli
from cmsc_tf.deploy.evaluate_cli import __doc__  # noqa: F401  (absl's --help prints the main module's docstring)

if __name__ == "__main__":
    entry.run(cli.main, "training.evaluate", flags_module=cli)
