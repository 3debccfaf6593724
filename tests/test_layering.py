"""The layering of cmsc_tf, read from the source (every import statement, inside functions too).

numerics is the bottom layer (NumPy and TensorFlow arithmetic); models, eval,
io and deploy build on it; training (outside the package) builds on all of
them. A module's dependencies are the cmsc_tf modules its import statements
name, followed through those modules' own import statements: a lazy import
inside a function counts, and an import of the package ``cmsc_tf`` itself
counts as one of its root module (whose public names span every layer).
Importing ``cmsc_tf.a.b`` runs ``cmsc_tf/__init__.py`` too, but that is
Python's package machinery, not a dependency of the code, so parent packages
are not followed unless named.
"""

import ast
import sys
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cmsc_tf"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_names(name):
    """The absolute names of the modules and packages one module's import statements name."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            names.add(origin)
            # `from package import module` names the module; `from module import function`, the module.
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def dependencies(name):
    """Every cmsc_tf module ``name`` depends on, and the outside top-level packages named on the way."""
    seen, outside, todo = set(), set(), [name]
    while todo:
        for imported in imported_names(todo.pop()):
            if imported in MODULES:
                if imported not in seen:
                    seen.add(imported)
                    todo.append(imported)
            elif imported.split(".")[0] != "cmsc_tf":
                outside.add(imported.split(".")[0])
    return seen - {name}, outside


def layer(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""  # "" is the root module (cmsc_tf/__init__.py)


def violations(layer_name, refused):
    """``module -> refused dependencies`` for the modules of one layer."""
    found = {}
    for name in MODULES:
        if layer(name) != layer_name:
            continue
        inside, _ = dependencies(name)
        bad = sorted(d for d in inside if refused(d))
        if bad:
            found[name] = bad
    return found


def test_the_package_has_the_layers_the_rules_name():
    layers = {layer(name) for name in MODULES}
    assert {"numerics", "models", "eval", "io", "deploy"} <= layers
    # The reader follows chains: eval's protocol reaches numerics through numerics.degradation.
    inside, _ = dependencies("cmsc_tf.eval.protocol")
    assert {"cmsc_tf.numerics.degradation", "cmsc_tf.numerics.imresize_np"} <= inside


def test_numerics_imports_nothing_else_of_cmsc_tf():
    assert violations("numerics", lambda d: layer(d) != "numerics") == {}


@pytest.mark.parametrize("upper", ["eval", "deploy", "io"])
def test_models_never_import_eval_deploy_or_io(upper):
    assert violations("models", lambda d: layer(d) == upper) == {}


def test_eval_never_imports_deploy():
    assert violations("eval", lambda d: layer(d) == "deploy") == {}


def test_nothing_in_cmsc_tf_imports_training():
    for name in MODULES:
        _, outside = dependencies(name)
        assert "training" not in outside, name


def test_the_rules_catch_a_violation(tmp_path, monkeypatch):
    """The same reader on a package with one upward import of each kind finds each."""
    root = tmp_path / "cmsc_tf"
    for module, source in {
        "__init__.py": "",
        "numerics/__init__.py": "",
        "numerics/color.py": "import numpy\nfrom . import imresize\n",
        "numerics/imresize.py": "def f():\n    from ..eval import metrics\n",  # lazy, two levels up
        "models/__init__.py": "",
        "models/model.py": "from cmsc_tf.io.images import read_image\n",
        "eval/__init__.py": "",
        "eval/metrics.py": "import cmsc_tf.deploy.loader\n",
        "deploy/__init__.py": "",
        "deploy/loader.py": "import training.lib.trainer\n",
        "io/__init__.py": "",
        "io/images.py": "",
    }.items():
        (root / module).parent.mkdir(parents=True, exist_ok=True)
        (root / module).write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", root)
    monkeypatch.setattr(sys.modules[__name__], "MODULES",
                        {module_name(path): path for path in sorted(root.rglob("*.py"))})
    assert violations("numerics", lambda d: layer(d) != "numerics") == {
        "cmsc_tf.numerics.color": ["cmsc_tf.deploy.loader", "cmsc_tf.eval", "cmsc_tf.eval.metrics"],
        "cmsc_tf.numerics.imresize": ["cmsc_tf.deploy.loader", "cmsc_tf.eval", "cmsc_tf.eval.metrics"]}
    assert violations("models", lambda d: layer(d) == "io") == {
        "cmsc_tf.models.model": ["cmsc_tf.io.images"]}
    assert violations("eval", lambda d: layer(d) == "deploy") == {
        "cmsc_tf.eval.metrics": ["cmsc_tf.deploy.loader"]}
    assert "training" in dependencies("cmsc_tf.eval.metrics")[1]
