"""A layer's or model's Keras config read off its constructor, so `get_config` mirrors `__init__` by construction.

Each class stores its constructor arguments as attributes of the same name
(the `# === Config ===` block); `constructor_config` reads them back, in the
signature's order, as JSON-able values.
"""

import inspect

import keras


def constructor_arguments(cls):
    """The names of the keyword arguments of ``cls.__init__`` (without ``self`` and ``**kwargs``)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD)


def constructor_config(instance):
    """``{argument: value}`` for every constructor argument of ``instance``, serialisable."""
    return {name: _serializable(getattr(instance, name)) for name in constructor_arguments(type(instance))}


def _serializable(value):
    # Initializer objects become Keras's config dicts, which
    # `keras.initializers.get` turns back into the same initializer;
    # names and dicts stay as they are, readable.
    if isinstance(value, keras.initializers.Initializer):
        return keras.initializers.serialize(value)
    if isinstance(value, tuple):
        return list(value)
    return value
