"""One-off: renames settings in run folders' config.json and flags.txt (issue 25's renames).

    python -m training.rename_run_settings RUN_DIR...   # each a --model_dir of training.main

Renames precision -> dtype_policy and export_dir -> export_prefix, so that a
run started before the renames resumes with no changed setting. The shipped
runs (checkpoints/, docs/training_logs/) were converted with it once.
"""

import json
import pathlib
import re
import sys

from training.lib.checkpointing import CONFIG_FILE, config_text

RENAMES = {"precision": "dtype_policy", "export_dir": "export_prefix"}


def convert(run_dir):
    config, flags = pathlib.Path(run_dir) / CONFIG_FILE, pathlib.Path(run_dir) / "flags.txt"
    if config.is_file():
        fields = json.loads(config.read_text())
        config.write_text(config_text({RENAMES.get(k, k): v for k, v in fields.items()}))
    if flags.is_file():
        text = flags.read_text()
        for old, new in RENAMES.items():
            text = re.sub(rf"^--(no)?{old}\b", rf"--\g<1>{new}", text, flags=re.M)
        flags.write_text(text)


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        convert(folder)
        print(f"converted {folder}")
