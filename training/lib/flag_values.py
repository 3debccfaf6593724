"""Flag values shared by the absl scripts: model overrides, integer lists, the resolved flags."""

import ast
import sys


def _override_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word such as zeros or he_normal


def parse_overrides(items):
    """["a=1", "b=zeros"] -> {"a": 1, "b": "zeros"}."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model_overrides entries must be key=value, got {item!r}")
        overrides[key.strip()] = _override_value(value.strip())
    return overrides


def int_list(name, values):
    """A list flag's values as integers, or a ValueError naming --name."""
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(f"--{name} must be a list of integers, got {','.join(values)}") from None


def scale_weights(name, items):
    """["2=2", "4=1.0"] -> {2: 2.0, 4: 1.0}, or a ValueError naming --name."""
    weights = {}
    for item in items:
        scale, sep, weight = item.partition("=")
        try:
            if not sep:
                raise ValueError
            weights[int(scale)] = float(weight)
        except ValueError:
            raise ValueError(f"--{name} entries must be scale=weight, got {item!r}") from None
    return weights


def resolved_flags(flag_values, module_name, exclude=()):
    """The flags declared by module `module_name` but `exclude`, with their final values, in --flagfile format."""
    module_flags = [flag for flag in flag_values.get_key_flags_for_module(sys.modules[module_name])
                    if flag.name not in exclude]
    lines = (flag.serialize() for flag in sorted(module_flags, key=lambda f: f.name))
    return "".join(f"{line}\n" for line in lines if line)
