"""Shipped models by name (keras-hub's ``from_preset`` convention).

A preset name is accepted wherever a model path is: ``cmsc-upscale --model
vdsr``, ``Upscaler("cmsc_full")``, ``python -m training.evaluate --model
cmsc_compact``, :func:`cmsc_tf.deploy.loader.load_network` /
``load_predictor``, and ``CMSC.from_preset("vdsr")`` (the Keras model, of every
preset). ``cmsc_tf.list_presets()`` names them with their one-line descriptions.

Where the files are looked up, first found wins:

1. ``savedmodels/`` of the git checkout this package runs from (an editable
   install or ``PYTHONPATH=<checkout>``), so a re-exported model is used at once;
2. ``cmsc_tf/_savedmodels/`` inside an installed wheel: ``setup.py`` maps the
   checkout's ``savedmodels/`` there, copying exactly the files of
   :data:`PRESETS` (:func:`package_files`), nothing else exported there.

A preset name always means the preset, even if a folder of that name lies in
the working directory: write ``./vdsr`` for such a folder.

This module uses the standard library only: ``setup.py`` reads it by path.
"""

import pathlib

# name -> description and files, relative to savedmodels/. "saved_model": what
# the loader runs at float32 (training.evaluate; Upscaler / cmsc-upscale with
# precision "float32"); "keras": the Keras model of CMSC.from_preset
# (every preset ships one, so the model layer loads it without the deploy layer); "tflite":
# the converted float16 network; "tflite_dynamic_int8": the network with int8
# weights run by LiteRT, what Upscaler and cmsc-upscale run by default
# (docs/deployment.md: about 3 to 3.5 times the float32 speed, Set5 within 0.02 dB).
PRESETS = {
    "cmsc_compact": {
        "description": "Compact CMSC (2 stages of 2 modules, 32 features) trained on the 291 images "
                       "(docs/results.md); the default model. Also .keras and float16 .tflite.",
        "saved_model": "cmsc_compact/6",
        "keras": "cmsc_compact.keras",
        "tflite": "cmsc_compact_float16.tflite",
        "tflite_dynamic_int8": "cmsc_compact_dynamic_int8.tflite",
    },
    "cmsc_full": {
        "description": "The paper's full CMSC (3 stages of 5 modules, 64 features) trained on a lent GPU: "
                       "the best scores, 14 times the compute (docs/results.md). Also .keras.",
        "saved_model": "cmsc_full/1",
        "keras": "cmsc_full.keras",
        "tflite_dynamic_int8": "cmsc_full_dynamic_int8.tflite",
    },
    "vdsr": {
        "description": "VDSR (Kim et al. 2016) with its public weights.",
        "saved_model": "vdsr/1",
        "keras": "vdsr.keras",
    },
}
DEFAULT_PRESET = "cmsc_compact"
# The notebooks' model when DEFAULT_PRESET is absent (a trimmed checkout).
FALLBACK_PRESET = "vdsr"
# Where the files lie in a checkout, and in an installed package.
CHECKOUT_DIR = "savedmodels"
PACKAGE_DIR = "_savedmodels"

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]  # cmsc_tf/


def package_files():
    """Glob patterns, relative to savedmodels/, of every file the presets need (setup.py's package_data)."""
    patterns = []
    for preset in PRESETS.values():
        patterns += [f"{preset['saved_model']}/*", f"{preset['saved_model']}/*/*"]
        if "keras" in preset:
            patterns.append(preset["keras"])
        for kind in ("tflite", "tflite_dynamic_int8"):
            if kind in preset:
                patterns += [preset[kind], preset[kind] + ".json"]
    return patterns


def search_dirs():
    """The folders searched for preset files, in order (see the module docstring)."""
    checkout = _PACKAGE.parent
    dirs = []
    if (checkout / "setup.py").is_file():  # a checkout, not site-packages
        dirs.append(checkout / CHECKOUT_DIR)
    dirs.append(_PACKAGE / PACKAGE_DIR)
    return dirs


def is_preset(name):
    return isinstance(name, str) and name in PRESETS


def preset_path(name, kind="saved_model"):
    """Path of preset ``name``'s ``kind`` file (``saved_model``, ``keras``, ``tflite`` or ``tflite_dynamic_int8``).

    Raises ValueError for an unknown name or kind, FileNotFoundError if the
    files are in none of :func:`search_dirs`.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(PRESETS)}")
    if kind not in PRESETS[name]:
        kinds = sorted(set(PRESETS[name]) - {"description"})
        raise ValueError(f"preset {name!r} has no {kind!r} file (it has {', '.join(kinds)})")
    relative = PRESETS[name][kind]
    for folder in search_dirs():
        if (folder / relative).exists():
            return folder / relative
    looked = " or ".join(str(folder / relative) for folder in search_dirs())
    raise FileNotFoundError(f"preset {name!r}: {looked} not found (a trimmed checkout or install?)")


def resolve(model):
    """``model`` if it is not a preset name, else the preset's SavedModel path."""
    return preset_path(model) if is_preset(model) else model


def list_presets():
    """``{name: one-line description}`` of every preset, the default first (``cmsc_tf.list_presets``)."""
    return {name: preset["description"] for name, preset in PRESETS.items()}


__all__ = ["PRESETS", "DEFAULT_PRESET", "FALLBACK_PRESET", "preset_path", "resolve", "is_preset", "list_presets"]
