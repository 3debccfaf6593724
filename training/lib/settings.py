"""One declaration per setting: a dataclass field that carries its help text and choices.

A config class (``TrainConfig``) declares each setting once, with
:func:`setting`; everything else is derived from that declaration:

- :func:`define_flags`: one absl flag per field, of the kind the default's
  type gives (bool, integer, float, string, enum where it has choices, list
  for tuples and dicts), with the field's default and help;
- :func:`from_flags`: the config built from the parsed flags (list flags
  through the field's parser, a ``ValueError`` naming the flag when bad);
- :func:`choice_errors`: the settings whose value is not among their choices
  (the config's ``validate`` reports them, for configs built in code too);
- the run's ``config.json`` is ``dataclasses.asdict`` of the same object.

Adding a setting is adding one field with :func:`setting` (and using it).
"""

import dataclasses
import sys

from training.lib.flag_values import int_list


def setting(default, help, choices=None, parse=None):
    """A dataclass field: `default`, its `help` text, optional `choices`, and for a tuple or dict
    default the `parse(flag name, [item, ...])` that turns its list flag into the value
    (default for tuples: integers when the default holds integers, else strings)."""
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "parse": parse}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _list_items(value):
    if isinstance(value, dict):
        return [f"{key}={item}" for key, item in value.items()]
    return [str(item) for item in value]


def define_flags(config_class, flag_values, module_name):
    """Declares one absl flag per field of `config_class` in `flag_values`, as flags of `module_name`
    (so that ``resolved_flags`` of that module writes them back)."""
    from absl import flags

    # absl files the flags of the script being run under its path (as its own DEFINE_* calls do).
    module_name = sys.argv[0] if module_name == "__main__" else module_name
    for field in dataclasses.fields(config_class):
        default, help_text, choices = _default(field), field.metadata["help"], field.metadata["choices"]
        common = dict(flag_values=flag_values, module_name=module_name)
        if isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, **common)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, **common)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, **common)
        elif isinstance(default, (tuple, dict)):
            flags.DEFINE_list(field.name, _list_items(default), help_text, **common)
        elif choices:
            flags.DEFINE_enum(field.name, default, list(choices), help_text, **common)
        else:
            flags.DEFINE_string(field.name, default, help_text, **common)


def from_flags(config_class, flag_values):
    """A `config_class` from the parsed `flag_values`; ValueError naming the flag of a bad list item."""
    values = {}
    for field in dataclasses.fields(config_class):
        value, default = flag_values[field.name].value, _default(field)
        if isinstance(default, (tuple, dict)):
            parse = field.metadata["parse"] or _parse_tuple(default)
            value = parse(field.name, list(value or []))
        values[field.name] = value
    return config_class(**values)


def _parse_tuple(default):
    if all(isinstance(item, int) for item in default) and default:
        return int_list
    return lambda name, items: tuple(items)


def choice_errors(config):
    """["name must be one of (...)", ...] for each setting whose value is not one of its choices."""
    return [f"{field.name} must be one of {field.metadata['choices']}"
            for field in dataclasses.fields(config)
            if field.metadata.get("choices") and getattr(config, field.name) not in field.metadata["choices"]]
