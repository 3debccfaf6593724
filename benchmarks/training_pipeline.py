"""Does the tf.data pipeline keep up with training? Patches/s of both, side by side.

Usage (from the repository root):

    python benchmarks/training_pipeline.py                       # skimage photos, full CMSC
    python benchmarks/training_pipeline.py --train_sets=t91 --data_dir=../shared/datasets
    python benchmarks/training_pipeline.py --model_overrides=num_features=32,num_stages=2,num_modules=2

Measures, in one run on the same machine:
- the pipeline alone: (LR, HR) 41x41 patches per second delivered by
  training.pipeline.training_dataset ("paper" mode by default, 24 variants,
  scales 2/3/4, in-graph bicubic), after a warm-up batch;
- training alone: train steps per second of the compiled model on one fixed
  batch repeated (no input cost), times the batch size = patches consumed/s.
The ratio pipeline / training must stay above 1 for the pipeline never to
starve the accelerator. On a CPU-only machine both compete for the same cores,
so the CPU ratio is a lower bound of what a GPU host sees.
"""

import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("train_sets", ["skimage_train"], "Image sets feeding the pipeline.")
flags.DEFINE_string("data_dir", None, "Datasets folder (default $CMSC_DATA_DIR).")
flags.DEFINE_string("tfds_dir", None, "TFDS directory.")
flags.DEFINE_enum("pipeline", "paper", ["paper", "random_crop"], "Pipeline mode.")
flags.DEFINE_string("variant", "cmsc", "Model variant.")
flags.DEFINE_list("model_overrides", [], "key=value overrides of the variant.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("pipeline_batches", 100, "Batches timed through the pipeline.")
flags.DEFINE_integer("train_steps", 3, "Training steps timed.")
flags.DEFINE_bool("xla", False, "XLA for the train step.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy.")


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from training import pipeline, train_lib
    from training.flag_values import parse_overrides

    keras.mixed_precision.set_dtype_policy(FLAGS.precision)
    config = train_lib.TrainConfig(
        variant=FLAGS.variant, model_overrides=parse_overrides(FLAGS.model_overrides),
        train_sets=tuple(FLAGS.train_sets), data_dir=FLAGS.data_dir or "",
        tfds_dir=FLAGS.tfds_dir or "", jit_compile=FLAGS.xla,
        pipeline=pipeline.PipelineConfig(mode=FLAGS.pipeline, batch_size=FLAGS.batch_size))
    table = train_lib.load_training_table(config)
    patches = pipeline.count_paper_patches(table.shapes)
    print(f"training set: {len(table)} images, {patches} patches per paper epoch")

    data = pipeline.training_dataset(table, config.pipeline, num_steps=max(
        FLAGS.pipeline_batches + 1, patches // FLAGS.batch_size))
    iterator = iter(data)
    first = next(iterator)  # traces the pipeline and fills the first buffers
    start = time.perf_counter()
    for _ in range(FLAGS.pipeline_batches):
        next(iterator)
    pipeline_rate = FLAGS.pipeline_batches * FLAGS.batch_size / (time.perf_counter() - start)

    model = train_lib.build_and_compile(config, steps_per_epoch=1000)
    fixed = tf.data.Dataset.from_tensors(first).repeat()
    model.fit(fixed, steps_per_epoch=1, epochs=1, verbose=0)  # trace + first step
    start = time.perf_counter()
    model.fit(fixed, steps_per_epoch=FLAGS.train_steps, epochs=1, verbose=0)
    steps_per_second = FLAGS.train_steps / (time.perf_counter() - start)
    train_rate = steps_per_second * FLAGS.batch_size

    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"pipeline  {pipeline_rate:10.1f} patches/s ({FLAGS.pipeline} mode, "
          f"batch {FLAGS.batch_size})")
    print(f"training  {train_rate:10.1f} patches/s ({steps_per_second:.3f} steps/s, "
          f"{FLAGS.variant} {config.model_overrides or ''}, {device}, {FLAGS.precision})")
    print(f"ratio     pipeline / training = {pipeline_rate / train_rate:.1f}")


if __name__ == "__main__":
    app.run(main)
