"""The CMSC network in PyTorch, for the speed peer in benchmarks/precision.py (PyTorch is optional).

Usage (run by benchmarks/precision.py with a Python that has torch; NumPy and
torch only, no TensorFlow):

    python benchmarks/cmsc_torch.py WEIGHTS.npz [--repeats 3] [--threads N]

``WEIGHTS.npz`` is written by :func:`export_weights` (TensorFlow side): the
model's config as JSON (``config``), every convolution with its batch norm
folded in (``<name>/kernel`` OIHW, ``<name>/bias``), the stage weights of the
ensemble, a test input ``x`` ``[1, 1, H, W]`` and the Keras float32 output
``keras_final`` on it. This script checks its float32 output against
``keras_final``, times the forward pass in float32 and under bfloat16 autocast
(contiguous and channels_last memory layouts, best of ``--repeats`` each,
alternating), and prints one JSON line. Its ``seconds`` also hold
``convolutions alone bfloat16 <layout>``: the same convolutions with every
elementwise operation between them dropped (:func:`build_convolutions_alone`),
the rate PyTorch's bfloat16 convolutions give on this network's mix of kernels.

The training peer of benchmarks/training_flops.py is :func:`train_step_function`:
the same network with live batch normalisation (:func:`build_trainable`) and
the trainer's step with ``TrainConfig``'s defaults (Eq. 8's half squared error
summed over pixels, alpha = 2 / (S + 2), SGD with momentum 0.9, weight decay
1e-4, the gradient's global norm clipped to 0.4), in float32 or under bfloat16
autocast. Only for timing: its weights are PyTorch's own initialisation.
Its ``convolutions_alone`` step trains :func:`build_convolutions_alone`
instead: the same convolutions, nothing between them.
"""

import argparse
import json
import time

import numpy as np


def export_weights(model, path, x):
    """Writes ``model``'s (a Keras CMSC with MSC modules) folded weights, ``x`` and its Keras output to ``path``.

    Batch norm is folded into the preceding convolution (``w * gamma / sqrt(var + eps)``,
    ``beta - mean * gamma / sqrt(var + eps)``), as the TFLite converter does.
    """
    from cmsc_tf.models.model import final_output

    config = model.get_config()
    supported = (config["module_type"] == "msc" and config["residual_features"] and config["stage_entry_conv"]
                 and config["cascaded_supervision"] and not config["shared_reconstruction"]
                 and config["activation"] == "leaky_relu" and not config["fused_activation"])
    if not supported:
        raise ValueError("cmsc_torch runs the paper's CMSC layout only (MSC modules, residual features, "
                         "stage entry convolutions, cascaded supervision, leaky ReLU)")
    arrays = {}

    def unit(name, unit_layer):
        kernel = unit_layer.conv.kernel.numpy()
        bias = unit_layer.conv.bias.numpy() if unit_layer.conv.use_bias else np.zeros(kernel.shape[-1], np.float32)
        if unit_layer.norm is not None:
            norm = unit_layer.norm
            factor = norm.gamma.numpy() / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
            kernel = kernel * factor
            bias = norm.beta.numpy() + (bias - norm.moving_mean.numpy()) * factor
        arrays[f"{name}/kernel"] = kernel.transpose(3, 2, 0, 1).astype(np.float32)
        arrays[f"{name}/bias"] = bias.astype(np.float32)

    unit("feature_extraction", model.get_layer("feature_extraction"))
    for q in range(1, config["num_stages"] + 1):
        stage = model.get_layer(f"subnetwork_{q}")
        unit(f"stage_{q}/entry", stage.entry)
        for i, block in enumerate(stage.blocks):
            for side, (first, second) in zip(("left", "right"), block.branches):
                unit(f"stage_{q}/module_{i + 1}/{side}_1", first)
                unit(f"stage_{q}/module_{i + 1}/{side}_2", second)
        reconstruction = model.get_layer(f"reconstruction_{q}")
        arrays[f"stage_{q}/reconstruction/kernel"] = reconstruction.kernel.numpy().transpose(3, 2, 0, 1)
        arrays[f"stage_{q}/reconstruction/bias"] = reconstruction.bias.numpy()
    arrays["stage_weights"] = model.get_layer("final").stage_weights.numpy()
    arrays["x"] = np.asarray(x, np.float32).transpose(0, 3, 1, 2)
    arrays["keras_final"] = np.asarray(final_output(model(x, training=False))).transpose(0, 3, 1, 2)
    np.savez(path, config=json.dumps({k: config[k] for k in ("num_stages", "num_modules", "negative_slope")}),
             **arrays)


def build_forward(weights):
    """The CMSC forward pass over the arrays of :func:`export_weights` (torch tensors)."""
    import torch
    import torch.nn.functional as F

    config = json.loads(str(weights["config"]))
    slope = config["negative_slope"]
    params = {k: torch.from_numpy(np.asarray(weights[k])) for k in weights.files if k not in ("config", "x", "keras_final")}

    def conv(x, name, act):
        kernel = params[f"{name}/kernel"]
        y = F.conv2d(x, kernel, params[f"{name}/bias"], padding=kernel.shape[-1] // 2)
        return F.leaky_relu(y, slope) if act else y

    def forward(x):
        features = conv(x, "feature_extraction", True)
        final = 0
        for q in range(1, config["num_stages"] + 1):
            inputs = features
            a = b = conv(features, f"stage_{q}/entry", True)
            for i in range(1, config["num_modules"] + 1):
                prefix = f"stage_{q}/module_{i}"
                merged = (a + b) * 0.5
                left = conv(conv(a, f"{prefix}/left_1", True), f"{prefix}/left_2", False)
                right = conv(conv(b, f"{prefix}/right_1", True), f"{prefix}/right_2", False)
                if i == config["num_modules"]:
                    a = left + right + merged
                else:
                    a, b = F.leaky_relu(left + merged, slope), F.leaky_relu(right + merged, slope)
            features = a + inputs
            prediction = conv(features, f"stage_{q}/reconstruction", False).float() + x.float()
            final = final + prediction * params["stage_weights"][q - 1]
        return final

    return forward, params


def build_convolutions_alone(shapes, channels_last=False, trainable=False):
    """Convolutions of kernel ``shapes`` (OIHW, the network's order) with nothing between them.

    Those of the feature width (the first kernel's output) run one after
    another; those of another output width (the reconstructions) branch off
    the chain and are summed into the output. No bias, no activation: the
    benchmarks' bound, what these convolutions cost with every elementwise
    operation free. Returns the forward function; ``trainable``: its kernels
    require gradients and are its ``kernels`` attribute (for an optimizer).
    """
    import torch
    import torch.nn.functional as F

    # Random kernels of variance 1 / fan-in: without the batch norms and
    # activations, the trained ones would let the activations grow or shrink
    # layer by layer into infinities or denormals.
    generator = torch.Generator().manual_seed(0)
    kernels = [torch.randn(shape, generator=generator) / float(np.prod(shape[1:])) ** 0.5 for shape in shapes]
    if channels_last:
        kernels = [k.contiguous(memory_format=torch.channels_last) for k in kernels]
    kernels = [k.requires_grad_(trainable) for k in kernels]
    width = kernels[0].shape[0]  # the feature extraction's output: the chain's width

    def forward(x):
        trunk, side = x, 0
        for kernel in kernels:
            y = F.conv2d(trunk, kernel, padding=kernel.shape[-1] // 2)
            if kernel.shape[0] == width:
                trunk = y
            else:
                side = side + y
        return side

    forward.kernels = kernels
    return forward


def build_trainable(num_stages=3, num_modules=5, num_features=64, kernel_sizes=(3, 5)):
    """The CMSC of cmsc_tf's defaults as a torch module with live batch norm; outputs ``[y_1, ..., y_S, y]``."""
    import torch
    from torch import nn

    def unit(in_features, kernel_size, activation=True):
        # No convolution bias before BN (its offset replaces it); Keras's BN epsilon and momentum.
        layers = [nn.Conv2d(in_features, num_features, kernel_size, padding=kernel_size // 2, bias=False),
                  nn.BatchNorm2d(num_features, eps=1e-3, momentum=0.01)]
        return nn.Sequential(*layers, nn.LeakyReLU(0.2)) if activation else nn.Sequential(*layers)

    class MultiScaleCross(nn.Module):
        def __init__(self, fused):
            super().__init__()
            self.fused = fused
            self.branches = nn.ModuleList(
                nn.Sequential(unit(num_features, k), unit(num_features, k, activation=False)) for k in kernel_sizes)
            self.act = nn.LeakyReLU(0.2)

        def forward(self, a, b):
            merged = (a + b) * 0.5
            left, right = self.branches[0](a), self.branches[1](b)
            if self.fused:
                return left + right + merged, None
            return self.act(left + merged), self.act(right + merged)

    class Subnetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.entry = unit(num_features, 3)
            self.blocks = nn.ModuleList(MultiScaleCross(fused=(i == num_modules - 1)) for i in range(num_modules))

        def forward(self, inputs):
            a = b = self.entry(inputs)
            for block in self.blocks:
                a, b = block(a, b)
            return a + inputs

    class CMSC(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = unit(1, 3)
            self.stages = nn.ModuleList(Subnetwork() for _ in range(num_stages))
            self.reconstructions = nn.ModuleList(nn.Conv2d(num_features, 1, 3, padding=1) for _ in range(num_stages))
            self.stage_weights = nn.Parameter(torch.full((num_stages,), 1.0 / num_stages))

        def forward(self, x):
            features = self.features(x)
            predictions = []
            for stage, reconstruction in zip(self.stages, self.reconstructions):
                features = stage(features)
                # float32, as the Keras model's reconstructions under mixed precision
                predictions.append(reconstruction(features).float() + x)
            return predictions + [sum(w * p for w, p in zip(self.stage_weights, predictions))]

    return CMSC()


def train_step_function(model_overrides, batch, patch_size, bfloat16=False, channels_last=False, seed=0,
                        convolutions_alone=False):
    """A zero-argument function running one train step of :func:`build_trainable` on one fixed batch, and the model.

    ``convolutions_alone``: the step of the model's convolutions only
    (:func:`build_convolutions_alone` of its kernel shapes, in its order: no
    batch norm, activation, bias or addition between them; one output, its
    half squared error), with the same optimizer and clipping.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build_trainable(**model_overrides).train().to(memory_format=memory_format)
    x, y = (torch.rand(batch, 1, patch_size, patch_size).contiguous(memory_format=memory_format) for _ in range(2))
    if convolutions_alone:
        chain = build_convolutions_alone([p.shape for p in model.parameters() if p.ndim == 4], channels_last,
                                         trainable=True)
        parameters, forward, output_weights = chain.kernels, lambda: [chain(x)], [1.0]
    else:
        num_stages = len(model.stages)
        alpha = 2.0 / (num_stages + 2)
        output_weights = [(1 - alpha) / num_stages] * num_stages + [alpha]
        parameters, forward = list(model.parameters()), lambda: model(x)
    optimizer = torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            outputs = forward()
        # Eq. 8: half squared error summed over a pair's pixels, mean over the batch, per output.
        loss = sum(w * (0.5 * (o.float() - y) ** 2).sum(dim=(1, 2, 3)).mean() for w, o in zip(output_weights, outputs))
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, 0.4)
        optimizer.step()
        return loss.item()

    return step, model


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = np.load(args.weights)
    forward, params = build_forward(weights)
    x = torch.from_numpy(weights["x"])
    with torch.inference_mode():
        float32_out = forward(x).numpy()
        error = float(np.abs(float32_out - weights["keras_final"]).max())
        runs = {}
        for layout in ("contiguous", "channels_last"):
            xl = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
            if layout == "channels_last":
                for name, value in params.items():
                    if value.ndim == 4:
                        params[name] = value.contiguous(memory_format=torch.channels_last)
            runs[f"float32 {layout}"] = lambda xl=xl: forward(xl)

            def bf16(xl=xl):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return forward(xl)

            runs[f"bfloat16 {layout}"] = bf16

            shapes = [value.shape for name, value in params.items() if name.endswith("/kernel")]

            def bf16_convolutions(xl=xl, chain=build_convolutions_alone(shapes, layout == "channels_last")):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return chain(xl)

            runs[f"convolutions alone bfloat16 {layout}"] = bf16_convolutions
        outputs = {name: run().float().numpy() for name, run in runs.items()}  # also the warm-up
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "seconds": best,
        "max_error_vs_keras": error,
        "max_difference_vs_keras": {name: float(np.abs(out - weights["keras_final"]).max()) for name, out in outputs.items()
                                    if not name.startswith("convolutions alone")},
    }))


if __name__ == "__main__":
    main()
