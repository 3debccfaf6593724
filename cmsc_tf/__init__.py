"""cmsc-tf: the Cascaded Multi-Scale Cross network (Hu et al. 2018) in Keras 3.

The model, its layers and its loss need Keras alone, so they import (and
register their Keras classes) on any Keras backend: `training.main` trains
them with JAX on machines without TensorFlow, fed by its NumPy source
(`training.lib.data.source`). Every name below loads on first use, so that
``import cmsc_tf`` (and the ``cmsc-upscale`` command line, whose ``--help``
answers without TensorFlow) costs nothing until a name is used: most need
TensorFlow (image operations, export, `Upscaler`) or pyrtools (metrics);
`imresize_np` needs NumPy only.

The Keras classes (``cmsc_tf>CMSC``, the layers, the loss) are registered
whenever Keras is loaded: at once if Keras is already imported, else as soon
as it is, so ``import cmsc_tf; keras.saving.load_model("x.keras")`` finds them
in either order of imports.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# The modules that define (and register) cmsc_tf's Keras classes.
_KERAS_MODULES = ("cmsc_tf.models.layers", "cmsc_tf.models.losses", "cmsc_tf.models.model")

# name -> module of the names loaded on first use.
_LAZY_NAMES = {
    "ConvUnit": "cmsc_tf.models.layers",
    "MultiScaleCrossBlock": "cmsc_tf.models.layers",
    "ResidualFeaturesSubnetwork": "cmsc_tf.models.layers",
    "WeightedEnsemble": "cmsc_tf.models.layers",
    "HalfSquaredError": "cmsc_tf.models.losses",
    "cascade_alpha": "cmsc_tf.models.losses",
    "cascade_loss": "cmsc_tf.models.losses",
    "CMSC": "cmsc_tf.models.model",
    "VARIANTS": "cmsc_tf.models.model",
    "build_model": "cmsc_tf.models.model",
    "variant_config": "cmsc_tf.models.model",
    "load_vdsr_weights": "cmsc_tf.models.vdsr_weights",
    "luminance": "cmsc_tf.numerics.color",
    "rgb2ycbcr": "cmsc_tf.numerics.color",
    "rgb2ycbcr_tf": "cmsc_tf.numerics.color_tf",
    "ycbcr2rgb": "cmsc_tf.numerics.color",
    "ycbcr2rgb_tf": "cmsc_tf.numerics.color_tf",
    "export_saved_model": "cmsc_tf.deploy.saved_model",
    "imresize_np": "cmsc_tf.numerics.imresize_np",
    "imresize_tf": "cmsc_tf.numerics.imresize_tf",
    "ifc": "cmsc_tf.eval.metrics",
    "psnr": "cmsc_tf.eval.metrics",
    "ssim": "cmsc_tf.eval.metrics",
    "Upscaler": "cmsc_tf.deploy.upscaler",
    "list_presets": "cmsc_tf.models.presets",
}


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cmsc_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))


def _register_keras_classes():
    for module in _KERAS_MODULES:
        importlib.import_module(module)


# Why an import hook: Keras has no documented way to register classes lazily.
# `keras.saving.register_keras_serializable` runs when the class's module runs,
# which imports Keras (seconds, and TensorFlow on its default backend) at
# `import cmsc_tf`; `load_model` imports a config's own module only for the
# packages keras, keras_hub, keras_cv and keras_nlp; `custom_objects=` would
# put the burden on every caller. Keras 3.15 (setup.py's pin) was checked.
class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Registers cmsc_tf's Keras classes right after ``keras`` itself is imported.

    It finds ``keras`` as the other finders do, with the loader's
    ``exec_module`` extended; a spec asked for without importing (TensorFlow's
    ``importlib.util.find_spec("keras")``) changes nothing, and the finder
    leaves ``sys.meta_path`` once ``keras`` is executed.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if finder is not self and find else None
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is not None and hasattr(loader, "exec_module"):
            exec_keras = loader.exec_module

            def exec_module(module):
                exec_keras(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                _register_keras_classes()

            loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_keras_classes()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
