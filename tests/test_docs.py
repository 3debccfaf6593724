"""The commands, flags, modules and paths that the documentation names exist.

Reads README.md, docs/*.md and colab/README.md as text: every ``python -m X``
names a module of the tree; every ``--flag`` of a ``training.*`` entry point,
of ``cmsc-upscale`` / ``python -m cmsc_tf.deploy.cli`` and of a
``benchmarks/*.py`` script is one that the source file defines (found with a
regular expression, nothing is imported: no TensorFlow, well under a second);
every repo path named in code (``savedmodels/...``, ``*.flags``, ...) and
every relative link exists, except the places that the documented commands
write (``OUTPUTS`` below). All problems are reported at once, as file:line.
"""
import pathlib
import re
import shlex

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC_FILES = sorted(
    [REPO / "README.md", REPO / "colab" / "README.md", *(REPO / "docs").glob("*.md")]
)

# Entry points whose flags are checked: absl modules run with ``python -m``, and the
# installed absl commands; each -> the source file that defines its flags.
ABSL_SOURCES = {
    "training.main": "training/main.py",
    "training.evaluate": "cmsc_tf/deploy/evaluate_cli.py",
    "training.export": "cmsc_tf/deploy/export_cli.py",
    "training.claims": "training/claims.py",
    "training.plot_curves": "training/plot_curves.py",
    "cmsc-evaluate": "cmsc_tf/deploy/evaluate_cli.py",
    "cmsc-export": "cmsc_tf/deploy/export_cli.py",
}
CLI_MODULE = "cmsc_tf.deploy.cli"
CLI_SCRIPT = "cmsc-upscale"
# Flags every absl program has (absl.app and absl.logging define them).
# The module that gives every one of them its shared flags (--tf_log).
ABSL_SHARED_FLAGS = REPO / "cmsc_tf" / "entry.py"
# Settings dataclasses whose fields are flags (settings.define_flags), by class name -> source.
SETTINGS_CLASSES = {"TrainConfig": REPO / "training" / "lib" / "config.py"}
ABSL_BUILTIN_FLAGS = {"flagfile", "help", "helpshort", "helpfull", "helpxml", "verbosity", "v",
                      "logtostderr", "alsologtostderr", "log_dir", "stderrthreshold",
                      "only_check_args", "undefok"}
ARGPARSE_BUILTIN_FLAGS = {"help", "helpfull", "flagfile"}  # argparse_flags.ArgumentParser's own
# ``[--flag=value ...]`` in a usage line is a placeholder, not a flag.
PLACEHOLDER_FLAGS = {"flag"}

# Paths in the tree that the docs may name (the first component of a path).
PATH_ROOTS = ("savedmodels", "training", "docs", "benchmarks", "colab", "checkpoints",
              "cmsc_tf", "tests", "runs", "upscaled", ".ci")
# What the documented commands write: named in the docs, absent from a checkout.
OUTPUTS = (
    "runs/",                               # training.main / export / claims run folders
    "upscaled",                            # cmsc-upscale --out default
    "savedmodels/quick",                   # quick.flags: savedmodels/quick.keras, savedmodels/quick/1
    "savedmodels/cmsc/",                   # cmsc.flags exports: savedmodels/cmsc/1,
    "savedmodels/cmsc.keras",              #   savedmodels/cmsc.keras,
    "savedmodels/cmsc_float16.tflite",     #   savedmodels/cmsc_float16.tflite
    "savedmodels/cmsc_dynamic_int8.tflite",  # savedmodels/cmsc_dynamic_int8.tflite
    "savedmodels/cmsc_compact/7",          # the version that re-exporting into savedmodels/cmsc_compact adds
    "checkpoints/cmsc_compact_phase9",     # training/flags/compact_phase9.flags: the next phase of the default model
    "cmsc_tf/_savedmodels/",               # where `pip install .` puts the presets' files (setup.py)
)
OUTPUT_EXACT = {"savedmodels/cmsc"}
# Values of --model (training.evaluate, cmsc-upscale) that are not paths.
MODEL_NAMES = {"bicubic", "cmsc_compact", "cmsc_full", "vdsr"}
# Flags whose value a command reads: it must be shipped (or a preset), not merely a
# documented output, except a run folder under runs/ (trained by a documented
# command first), /tmp/ and the shared datasets and models beside the checkout.
INPUT_FLAGS = {
    "training.main": {"flagfile"},
    "training.evaluate": {"model", "flagfile"},
    "training.export": {"model_dir", "keras_model", "flagfile"},
    "training.claims": {"flagfile", "flagfile_common"},
    "training.plot_curves": {"flagfile"},
    "cmsc-evaluate": {"model", "flagfile"},
    "cmsc-export": {"model_dir", "keras_model", "flagfile"},
    CLI_MODULE: {"model"},
    CLI_SCRIPT: {"model"},
}
INPUT_ELSEWHERE = ("runs/", "/tmp/", "../shared/")

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./<>-])((?:%s)/[\w./-]*|[\w-]+\.flags)" % "|".join(map(re.escape, PATH_ROOTS)))
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _strip(path):
    return path.rstrip(".,;:")


def _absl_flags(source_file):
    text = source_file.read_text()
    names = set()
    for kind, name in re.findall(r"flags\.DEFINE_(\w+)\(\s*['\"](\w+)['\"]", text):
        names.add(name)
        if kind in ("bool", "boolean"):
            names.add("no" + name)
    # A script that defines one flag per field of a settings dataclass (training/lib/settings.py).
    for config_name in re.findall(r"settings\.define_flags\((\w+)", text):
        names |= _settings_flags(SETTINGS_CLASSES[config_name])
    return names


def _settings_flags(source_file):
    """The field names declared with ``setting(...)`` in ``source_file`` (and ``no<name>`` for bools)."""
    names = set()
    for name, kind in re.findall(r"^    (\w+): (\w+) = setting\(", source_file.read_text(), re.M):
        names.add(name)
        if kind == "bool":
            names.add("no" + name)
    return names


def _argparse_flags(source_file):
    return set(re.findall(r"add_argument\(\s*['\"]--([\w-]+)['\"]", source_file.read_text()))


def _module_exists(module):
    base = REPO / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or (
        base / "__main__.py").is_file()


def _flags_of(program):
    """The accepted flags of ``program`` (a module or script), or None if unchecked."""
    if program in ABSL_SOURCES:
        return _absl_flags(REPO / ABSL_SOURCES[program]) | _absl_flags(ABSL_SHARED_FLAGS) | ABSL_BUILTIN_FLAGS
    if program in (CLI_MODULE, CLI_SCRIPT):
        return _argparse_flags(REPO / "cmsc_tf/deploy/cli.py") | ARGPARSE_BUILTIN_FLAGS
    if program.startswith("benchmarks/") and (REPO / program).is_file():
        source = REPO / program
        return _absl_flags(source) | _argparse_flags(source) | ABSL_BUILTIN_FLAGS | {"help"}
    return None


def _is_output(path):
    return path in OUTPUT_EXACT or path.startswith(OUTPUTS)


def _snippets(text):
    """(line, code) for each code-block line (continuations joined) and inline code span."""
    out = []
    for fence in FENCE.finditer(text):
        first = text.count("\n", 0, fence.start()) + 1
        lines = fence.group().split("\n")[1:-1]
        pending, start = "", None
        for offset, line in enumerate(lines, start=first + 1):
            if start is None:
                start = offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            out.append((start, pending + line))
            pending, start = "", None
        if pending:
            out.append((start, pending))
    prose = FENCE.sub(lambda m: "\n" * m.group().count("\n"), text)
    for span in INLINE.finditer(prose):
        out.append((prose.count("\n", 0, span.start()) + 1, span.group(1).replace("\n", " ")))
    return out, prose


def _commands(code):
    """Token lists of the shell commands in ``code`` (comments dropped, split at ; && || |)."""
    try:
        lexer = shlex.shlex(code, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: prose, not a command
        tokens = code.split()
    commands, current = [], []
    for token in tokens:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def _check_command(tokens, where, problems):
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return
    program, args = None, []
    head = tokens[0]
    if head in ("pip", "pip3") or (len(tokens) > 2 and tokens[1:3] == ["-m", "pip"]):
        _check_pip(tokens, where, problems)
        return
    if head == "python" or head.endswith("/python") or head.startswith("python3"):
        if len(tokens) >= 3 and tokens[1] == "-m":
            program, args = tokens[2], tokens[3:]
            if not _module_exists(program) and program not in ("pytest", "pip", "venv"):
                problems.append(f"{where}: `python -m {program}`: no module {program} in the tree")
                return
        elif len(tokens) >= 2 and tokens[1].endswith(".py"):
            program, args = tokens[1], tokens[2:]
            if not (REPO / program).is_file():
                problems.append(f"{where}: `python {program}`: no such script")
                return
        else:
            return
    elif head == CLI_SCRIPT or head in ABSL_SOURCES or (
            head.startswith("benchmarks/") and head.endswith(".py")):
        program, args = head, tokens[1:]
    else:
        return
    accepted = _flags_of(program)
    if accepted is None:
        return
    inputs = INPUT_FLAGS.get(program, set())
    for i, arg in enumerate(args):
        arg = arg.lstrip("[")
        if not arg.startswith("--") or arg == "--":
            continue
        name, equals, value = arg[2:].partition("=")
        if name in PLACEHOLDER_FLAGS:
            continue
        if name not in accepted:
            problems.append(f"{where}: `{program}` has no flag --{name}")
            continue
        if not equals and program in (CLI_MODULE, CLI_SCRIPT) and i + 1 < len(args):
            value = args[i + 1]  # argparse: --model PATH
        if name in inputs and value and not value.isupper():  # FLAGFILE: a placeholder
            _check_input(program, name, value, where, problems)


def _check_pip(tokens, where, problems):
    """cmsc-tf is not on a package index: it installs from the checkout (``.``, ``-e .``)."""
    for token in tokens:
        if re.match(r"^cmsc[-_]tf(\[|$|[=<>])", token, re.I):
            problems.append(f"{where}: `pip install {token}`: cmsc-tf is not on the package index; "
                            "install the checkout (pip install -e '.[extra]')")


def _check_input(program, name, value, where, problems):
    if name in ("model", "keras_model") and value in MODEL_NAMES:
        return
    if (REPO / value).exists() or value.startswith(INPUT_ELSEWHERE):
        return
    problems.append(f"{where}: `{program} --{name}={value}` reads what is not shipped "
                    "(nor a preset, nor a run folder under runs/)")


def _check_paths(code, where, problems):
    for match in PATH.finditer(code):
        path = _strip(match.group(1))
        following = code[match.end():match.end() + 1]
        if following in ("<", "*", "{") or not path or path.endswith("/."):
            continue  # a pattern such as docs/claims_<study>.png
        if _is_output(path) or (REPO / path).exists():
            continue
        problems.append(f"{where}: `{path}` does not exist (nor is it a documented output)")


def _check_links(doc, prose, problems):
    for match in LINK.finditer(prose):
        target = match.group(1).split("#")[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue
        line = prose.count("\n", 0, match.start()) + 1
        if not (doc.parent / target).exists():
            problems.append(f"{_name(doc)}:{line}: link target {target} does not exist")


def _name(doc):
    return str(doc.relative_to(REPO)) if doc.is_relative_to(REPO) else doc.name


def doc_problems(doc):
    text = doc.read_text()
    snippets, prose = _snippets(text)
    problems = []
    for line, code in snippets:
        where = f"{_name(doc)}:{line}"
        for tokens in _commands(code):
            _check_command(tokens, where, problems)
        _check_paths(code, where, problems)
    _check_links(doc, prose, problems)
    return problems


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_doc_commands_flags_and_paths_exist(doc):
    problems = doc_problems(doc)
    assert not problems, "\n" + "\n".join(problems)


@pytest.mark.parametrize("flagfile", sorted([*REPO.glob("*.flags"), *(REPO / "training" / "flags").glob("*.flags")]),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_flag_files_use_defined_flags(flagfile):
    """The flag files the docs run with training.main set only flags it defines."""
    accepted = _flags_of("training.main")
    problems = [f"{flagfile.relative_to(REPO)}:{number}: training.main has no flag {line.split('=')[0]}"
                for number, line in enumerate(flagfile.read_text().splitlines(), start=1)
                if line.strip().startswith("--") and line.strip()[2:].split("=")[0] not in accepted]
    assert not problems, "\n" + "\n".join(problems)


def test_the_checker_finds_what_it_should(tmp_path):
    """A sample with one problem of each kind: each is reported with its line."""
    doc = tmp_path / "sample.md"
    doc.write_text(
        "Run `python -m training.nosuch --x=1`.\n"
        "```bash\n"
        "python -m training.main --flagfile=quick.flags \\\n"
        "    --no_such_flag=1 --noaugment\n"
        "cmsc-upscale a.png --scale 2 --bogus --model savedmodels/vdsr/1\n"
        "python -m training.evaluate --model=savedmodels/cmsc.keras  # written, not shipped\n"
        "python -m training.evaluate --model=savedmodels/missing.keras\n"
        "pip install cmsc-tf[jax]\n"
        "```\n"
        "See `checkpoints/nothing_here` and [x](nowhere.md); `runs/x` is written.\n"
    )
    problems = doc_problems(doc)
    text = "\n".join(problems)
    assert ":1: `python -m training.nosuch`" in text
    assert ":3: `training.main` has no flag --no_such_flag" in text
    assert ":5: `cmsc-upscale` has no flag --bogus" in text
    assert ":5: `cmsc-upscale --model=savedmodels/vdsr/1`" not in text  # shipped
    assert ":6: `training.evaluate --model=savedmodels/cmsc.keras` reads" in text
    assert ":7: `training.evaluate --model=savedmodels/missing.keras` reads" in text
    assert ":8: `pip install cmsc-tf[jax]`" in text
    assert ":10: `checkpoints/nothing_here` does not exist" in text
    assert ":10: link target nowhere.md" in text
    assert len(problems) == 9, text  # missing.keras is reported as a flag value and as a path


def _embedded_commands(path):
    """[(line number, code)]: the indented command lines of a flag file's comments or a script's docstring."""
    found = []
    text = path.read_text()
    if path.suffix == ".flags":
        lines = [(n, line[1:]) for n, line in enumerate(text.splitlines(), start=1) if line.startswith("#")]
    else:
        docstring = text.split('"""')[1] if text.count('"""') >= 2 else ""
        offset = text[:text.find('"""')].count("\n") + 1
        lines = [(n + offset - 1, line) for n, line in enumerate(docstring.splitlines(), start=1)]
    block, start = [], None
    for number, line in lines:
        if line.startswith("   ") and (block or re.search(r"\bpython3?\b|cmsc-", line)):
            start = start or number
            block.append(line.strip().removesuffix("\\"))
            if line.rstrip().endswith("\\"):
                continue
        if block:
            found.append((start, " ".join(block)))
        block, start = [], None
    return found


EMBEDDED = sorted([*REPO.glob("*.flags"), *(REPO / "training" / "flags").glob("*.flags"), *(REPO / "benchmarks").glob("*.py")])


@pytest.mark.parametrize("path", EMBEDDED, ids=lambda p: str(p.relative_to(REPO)))
def test_commands_in_flag_file_comments_and_script_usage_exist(path):
    """The commands that a flag file's comment or a benchmark's usage text gives name existing
    modules, flags and paths, as the docs' commands do."""
    problems = []
    for line, code in _embedded_commands(path):
        where = f"{path.relative_to(REPO)}:{line}"
        for tokens in _commands(code):
            _check_command(tokens, where, problems)
        _check_paths(code, where, problems)
    assert not problems, "\n" + "\n".join(problems)


def test_embedded_commands_are_found_and_checked(tmp_path):
    flagfile = tmp_path / "x.flags"
    flagfile.write_text("# Run:\n#   python -m training.main --flagfile=quick.flags \\\n"
                        "#       --no_such_flag=1\n# prose, python mentioned\n--epochs=1\n")
    [(line, code)] = _embedded_commands(flagfile)
    problems = []
    for tokens in _commands(code):
        _check_command(tokens, "x", problems)
    assert line == 2 and problems == ["x: `training.main` has no flag --no_such_flag"]
