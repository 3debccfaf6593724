"""Inference throughput of CMSC on the CPU, as a fraction of the matmul rate.

Usage: python benchmarks/inference_flops.py [--variant cmsc] [--size 256] [--repeats 3]

Times the model's forward pass (batch-norm in inference mode, inside one
tf.function) on a size x size input and a large float32 matmul in the same
run, and prints both rates and their ratio. FLOPs are counted from the
convolution kernels: 2 * H * W * k * k * C_in * C_out per 'same' convolution.
"""

import argparse
import time

import numpy as np
import tensorflow as tf

import cmsc_tf


def conv_flops(model, height, width):
    """Multiply-adds x 2 of every stride-1 'same' convolution of `model`."""
    total = 0
    for weight in model.weights:
        if len(weight.shape) == 4:  # only conv kernels are 4-D (HWIO)
            kh, kw, cin, cout = weight.shape
            total += 2 * height * width * kh * kw * cin * cout
    return total


def best_time(fn, repeats):
    fn()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="cmsc")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matmul_size", type=int, default=4096)
    args = parser.parse_args()

    model = cmsc_tf.build_model(args.variant)
    x = tf.constant(np.random.default_rng(0).uniform(size=(1, args.size, args.size, 1)), tf.float32)
    forward = tf.function(lambda t: model(t, training=False))
    model_seconds = best_time(lambda: [o.numpy() for o in tf.nest.flatten(forward(x))], args.repeats)
    model_gflops = conv_flops(model, args.size, args.size) / model_seconds / 1e9

    n = args.matmul_size
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.linalg.matmul(a, b))
    matmul_seconds = best_time(lambda: matmul().numpy(), args.repeats)
    matmul_gflops = 2 * n**3 / matmul_seconds / 1e9

    print(f"model   {args.variant} {args.size}x{args.size}: {model_seconds:.3f} s, "
          f"{conv_flops(model, args.size, args.size) / 1e9:.1f} GFLOP, {model_gflops:.1f} GFLOP/s")
    print(f"matmul  float32 {n}x{n}: {matmul_seconds:.3f} s, {matmul_gflops:.1f} GFLOP/s")
    print(f"ratio   model / matmul = {model_gflops / matmul_gflops:.2f}")


if __name__ == "__main__":
    main()
