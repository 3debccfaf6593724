"""The flag-free library behind the commands in `training/`: the trainer, its settings, data and callbacks."""
