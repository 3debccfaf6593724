"""Data parallelism: MirroredStrategy over 2 logical CPUs, a 2-process multi-worker run
(tf.distribute), and keras.distribution.DataParallel over 2 CPU devices (JAX)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests import training_helpers as helpers

WORKER = str(helpers.REPO_ROOT / "tests" / "training" / "distributed_worker.py")


def _weights(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _run_worker(out, flags, options=(), env=None):
    return subprocess.Popen([sys.executable, WORKER, str(out), *options, "--", *flags],
                            cwd=helpers.REPO_ROOT, env=env or helpers.python_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(processes, timeout):
    """Waits for all; on a timeout or a failure kills the others and reports the output."""
    outputs = []
    try:
        for process in processes:
            out, _ = process.communicate(timeout=timeout)
            outputs.append(out)
            assert process.returncode == 0, out[-4000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def test_mirrored_two_replicas_equal_one_device_with_the_same_global_batch(tmp_path):
    """Same init, same global batches, synchronized BN: 2 replicas == 1 device.

    Keras scales each replica's loss by its share of the global batch and sums
    the gradients across replicas, and synchronized BN computes the batch
    statistics over the global batch, so the updates are the same up to float
    summation order.
    """
    # A small learning rate: the loss sums over pixels, and at large steps float
    # rounding differences of the two summation orders grow chaotically.
    common = dict(sync_batch_norm=True, optimizer="sgd", learning_rate=1e-5, clip="value", clip_threshold=0.4,
                  weight_decay=1e-4, epochs=1, steps_per_epoch=4, batch_size=8,
                  checkpoint_every_steps=0)
    single = _run_worker(tmp_path / "single.npz", helpers.tiny_flags(
        tmp_path / "single", strategy="default", **common), ["--logical_cpus=2"])
    mirrored = _run_worker(tmp_path / "mirrored.npz", helpers.tiny_flags(
        tmp_path / "mirrored", strategy="mirrored", **common), ["--logical_cpus=2"])
    outputs = _finish([single, mirrored], timeout=240)
    assert "strategy mirrored with 2 replica(s)" in outputs[1]
    a, b = _weights(tmp_path / "single.npz"), _weights(tmp_path / "mirrored.npz")
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    # The steps did something: the reconstruction kernels (initialised to zeros
    # by the tiny configuration) have moved.
    reconstruction = [w for w in a if w.shape == (3, 3, 8, 1)]
    assert reconstruction and all(np.abs(w).max() > 0 for w in reconstruction)


def test_two_process_multi_worker_run_trains_and_workers_agree(tmp_path):
    with helpers.reserved_ports(2) as ports:
        # The reservation keeps out a plain bind (what another program picking a port does).
        with socket.socket() as intruder, pytest.raises(OSError):
            intruder.bind(("127.0.0.1", ports[0]))
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        processes = []
        for index in range(2):
            env = helpers.python_env()
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            # Synchronized BN: otherwise each worker keeps moving statistics of its own shard.
            flags = helpers.tiny_flags(tmp_path / "run", strategy="multi_worker",
                                       sync_batch_norm=True, epochs=1, steps_per_epoch=3,
                                       batch_size=8, checkpoint_every_steps=0)
            processes.append(_run_worker(tmp_path / f"worker{index}.npz", flags, env=env))
        outputs = _finish(processes, timeout=240)
    assert "strategy multi_worker with 2 replica(s)" in outputs[0]
    a, b = _weights(tmp_path / "worker0.npz"), _weights(tmp_path / "worker1.npz")
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    reconstruction = [w for w in a if w.shape == (3, 3, 8, 1)]  # zero-initialised, now trained
    assert reconstruction and all(np.abs(w).max() > 0 for w in reconstruction)
    # Only the chief (worker 0) writes the run directory; it trained 3 steps.
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 3
    assert os.path.exists(tmp_path / "run" / state["weights"])


def test_jax_data_parallel_on_two_devices_equals_one_device(tmp_path):
    """keras.distribution.DataParallel over 2 CPU devices (XLA's host device count) shards each
    global batch; the gradient and BN's batch statistics are those of the whole batch, so the
    run equals the one-device run up to float summation order."""
    pytest.importorskip("jax")
    env = dict(helpers.python_env("jax"), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    common = dict(optimizer="sgd", learning_rate=1e-5, clip="value", clip_threshold=0.4,
                  weight_decay=1e-4, epochs=1, steps_per_epoch=4, batch_size=8, checkpoint_every_steps=0)
    processes = [_run_worker(tmp_path / f"{strategy}.npz", helpers.tiny_flags(
        tmp_path / strategy, strategy=strategy, **common), env=env) for strategy in ("default", "mirrored")]
    outputs = _finish(processes, timeout=400)
    assert "trained variables live on [1] device(s)" in outputs[0]
    assert "trained variables live on [2] device(s)" in outputs[1]  # replicated over the mesh
    assert "strategy mirrored with 2 replica(s)" in outputs[1]
    a, b = _weights(tmp_path / "default.npz"), _weights(tmp_path / "mirrored.npz")
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    reconstruction = [w for w in a if w.shape == (3, 3, 8, 1)]  # zero-initialised, now trained
    assert reconstruction and all(np.abs(w).max() > 0 for w in reconstruction)
