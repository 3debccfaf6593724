"""Does the data keep up with training? Both feeds of the trainer against the model's step rate.

Usage (from the repository root; any Keras backend, KERAS_BACKEND=jax too):

    python benchmarks/training_pipeline.py                       # skimage photos, full CMSC
    python benchmarks/training_pipeline.py --train_sets=t91,bsd200 --data_dir=../shared/datasets
    python benchmarks/training_pipeline.py --model_overrides=num_features=32,num_stages=2,num_modules=2

Measures, in one run on the same machine:
- preparation: reading the training sets (`image_sets.read_luminance_set`)
  and building `training.lib.data.source.TrainingSource` (every image, in its
  size variants, degraded once at every scale), as `training.main` does at
  the start of a run;
- the NumPy feed: batches/s of `training.lib.data.source.batches` (the plain
  generator `training.main` feeds Keras with on JAX and other backends);
- the tf.data feed: batches/s of `training.lib.data.tf_dataset.training_dataset`
  (the same batches through `tf.numpy_function`, prefetched; what
  `training.main` uses on the TensorFlow backend); skipped without TensorFlow;
- training: steps/s of `trainer.build_and_compile`'s model calling
  `train_on_batch` on one fixed batch (no input cost), after a first call
  that traces/compiles it.
Each feed is timed over 20 times `--steps` batches (at least 50), after a
first batch. The ratio feed / training must stay above 1 for the data never
to starve the accelerator. On a CPU-only machine the feeds and training
compete for the same cores, so the CPU ratio is a lower bound of what a
GPU host sees.
"""

import pathlib
import sys
import time

from absl import app, flags

# `python benchmarks/<script>.py` puts benchmarks/ on the path, not the repository
# root that holds training/ (imported in main()).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

FLAGS = flags.FLAGS
flags.DEFINE_list("train_sets", ["skimage_train"], "Training image sets (as training.main's --train_sets).")
flags.DEFINE_string("data_dir", None, "Datasets folder (default $CMSC_DATA_DIR; not needed for skimage sets).")
flags.DEFINE_enum("pipeline", "paper", ["paper", "random_crop"], "How the pairs are chosen (--pipeline).")
flags.DEFINE_integer("batch_size", 32, "Pairs per batch.")
flags.DEFINE_list("model_overrides", [], "key=value overrides of the cmsc variant (default: the paper's "
                  "CMSC, S=3, M=5, 64 features).")
flags.DEFINE_integer("steps", 3, "Training steps timed (each feed: 20 times as many batches, at least 50).")


def _rate(iterator, count):
    """Items per second of `count` items of `iterator`, after a first one (warm-up)."""
    next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count / (time.perf_counter() - start)


def _device():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    if backend == "jax":
        import jax

        return jax.devices()[0].platform.upper()
    return "?"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import importlib.util

    import keras

    from cmsc_tf.io import image_sets
    from training.lib import trainer
    from training.lib.config import TrainConfig
    from training.lib.data.source import TrainingSource, batches
    from training.lib.flag_values import parse_overrides

    config = TrainConfig(model_overrides=parse_overrides(FLAGS.model_overrides),
                         train_sets=tuple(FLAGS.train_sets), data_dir=FLAGS.data_dir or "",
                         pipeline=FLAGS.pipeline, batch_size=FLAGS.batch_size)
    feed_batches = max(50, 20 * FLAGS.steps)

    start = time.perf_counter()
    images = [y for name in config.train_sets
              for _, y in image_sets.read_luminance_set(name, config.data_dir or None)]
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    source = TrainingSource(images, config.scales, config.patch_size, config.augment, config.pipeline,
                            config.batch_size, config.seed)
    prepare_s = time.perf_counter() - start
    print(f"training set: {len(images)} images ({','.join(config.train_sets)}), {len(source.lr)} "
          f"degraded images, {source.num_paper_pairs} paper pairs per pass "
          f"({source.steps_per_pass} steps of {config.batch_size})")
    print(f"preparation   {read_s + prepare_s:8.1f} s (reading {read_s:.1f} s, degrading {prepare_s:.1f} s)")

    numpy_rate = _rate(batches(source, 0), feed_batches)
    tf_rate = None
    if importlib.util.find_spec("tensorflow") is not None:
        from training.lib.data.tf_dataset import training_dataset

        tf_rate = _rate(iter(training_dataset(source, 0, feed_batches + 1)), feed_batches)

    model = trainer.build_and_compile(config)
    lr, hr = source.batch(0)
    model.train_on_batch(lr, hr)  # traces / compiles the train step
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        model.train_on_batch(lr, hr)
    train_rate = FLAGS.steps / (time.perf_counter() - start)

    batch = config.batch_size
    print(f"numpy feed    {numpy_rate:8.1f} batches/s ({numpy_rate * batch:.0f} pairs/s; "
          f"{config.pipeline} mode, batch {batch}, {feed_batches} batches)")
    if tf_rate is None:
        print("tf.data feed  (skipped: TensorFlow is not installed)")
    else:
        print(f"tf.data feed  {tf_rate:8.1f} batches/s ({tf_rate * batch:.0f} pairs/s)")
    print(f"training      {train_rate:8.3f} steps/s ({train_rate * batch:.1f} pairs/s; cmsc "
          f"{config.model_overrides or ''}, {model.count_params()} parameters, "
          f"{keras.backend.backend()} backend, {_device()}, float32, {FLAGS.steps} steps)")
    ratios = [f"numpy feed / training = {numpy_rate / train_rate:.1f}"]
    if tf_rate is not None:
        ratios.append(f"tf.data feed / training = {tf_rate / train_rate:.1f}")
    print("ratio         " + ", ".join(ratios))


if __name__ == "__main__":
    app.run(main)
