"""Running trained models: the model loader, SavedModel and TFLite export, ``Upscaler``, tiling, the ``cmsc-upscale`` CLI."""
