# conductor's pre-started Python (Runtime.Warm): started with the interpreter's own flags while
# the sandbox boots, it waits for the entrypoint's name on stdin, checks the run's imports
# (Runtime.ImportCheck), then runs that file as `python <file>` would: sys.argv, sys.path[0] (the
# file's directory), a fresh __main__ module with __file__, the exit status, and a traceback that
# starts at the file's own frame.
main_names = dict(globals())  # what this interpreter gives a __main__ module before it runs
import os
import sys

# What run_python_code's runner (pyrun.py) and the import check need, loaded while the sandbox
# boots, not per request.
import ast
import importlib.machinery
import json
import site

# argv: config.PyPackagesDir, where the allowed PyPI packages are, and the import check's file
# (Runtime.ImportCheck). The packages go on sys.path after the standard library and the base
# environment (site put those there), whether or not this server has any; site also reads the
# .pth files of the packages installed there.
packages_dir, import_check = (sys.argv[1:] + ["", ""])[:2]
if packages_dir:
    site.addsitedir(packages_dir)

# Then pairs of a working-directory file's name and its source: conductor's own programs
# (run_python_code's runner and its mcpFactory client), compiled now, while the sandbox boots. A
# run of a file of that name and that very content uses the compiled code; any other content (a
# request's own file of that name) is compiled as usual.
precompiled = {}
for _name, _source in zip(sys.argv[3::2], sys.argv[4::2]):
    _path = os.path.join(os.getcwd(), _name)
    _bytes = _source.encode("utf-8")
    precompiled[_path] = (_bytes, compile(_bytes, _path, "exec", dont_inherit=True))

# The import check. Before the program runs, every absolute import statement (`import x.y`,
# `from x import y`, at any depth: in functions, classes, branches) of the request's Python files
# must name a top-level module the sandbox has: the standard library (sys.stdlib_module_names,
# built-in modules, and whatever is loaded already, __main__ among them), the interpreter's base environment, the allowed PyPI packages, or the
# request's own files — found the way the import itself would find it (PathFinder over the
# program's sys.path), without importing anything. Otherwise the run is refused at the first such
# import, with its line and column, naming what may be imported. Not checked:
#   - relative imports (from . import x): the request's own package;
#   - an import written inside the body of a `try` whose handlers catch ImportError (also
#     ModuleNotFoundError, Exception, BaseException, a bare except), inside `with
#     suppress(ImportError)`, or under `if TYPE_CHECKING:`: the code is ready for it to fail,
#     or never runs it;
#   - dynamic imports (importlib.import_module, __import__, exec): they raise ModuleNotFoundError
#     when they run, as the root holds nothing else.
# A file that does not parse is left to Python, which reports its syntax error when it runs it.

IMPORT_GUARDS = frozenset(("ImportError", "ModuleNotFoundError", "Exception", "BaseException"))
TRY_NODES = tuple(t for t in (getattr(ast, "Try", None), getattr(ast, "TryStar", None)) if t)


def node_name(n):
    """The last name of a Name or dotted Attribute expression, else None."""
    if isinstance(n, ast.Name):
        return n.id
    if isinstance(n, ast.Attribute):
        return n.attr
    return None


def catches_import_error(types_):
    """Whether an except clause's type expression catches ImportError (None: a bare except)."""
    if types_ is None:
        return True
    elts = types_.elts if isinstance(types_, ast.Tuple) else [types_]
    return any(node_name(t) in IMPORT_GUARDS for t in elts)


def guarded_body(node):
    """The statements of node that an ImportError raised in them does not escape, or never run."""
    if isinstance(node, TRY_NODES) and any(catches_import_error(h.type) for h in node.handlers):
        return node.body
    if isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and node_name(call.func) == "suppress" and any(
                    catches_import_error(a) for a in call.args):
                return node.body
    if isinstance(node, ast.If) and node_name(node.test) == "TYPE_CHECKING":
        return node.body
    return ()


def checked_imports(tree):
    """(top-level module, node) of every absolute import the check covers, in source order;
    node has the position (an import's alias, from 3.10; else its statement)."""
    found = []
    todo = [(tree, False)]
    while todo:
        node, guarded = todo.pop()
        if not guarded and isinstance(node, ast.Import):
            for a in node.names:
                found.append((a.name.partition(".")[0], a if hasattr(a, "lineno") else node))
        elif not guarded and isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.partition(".")[0], node))
        inner = {id(s) for s in guarded_body(node)}
        todo.extend((c, guarded or id(c) in inner) for c in ast.iter_child_nodes(node))
    found.sort(key=lambda f: (f[1].lineno, f[1].col_offset))
    return found


def import_refusals(spec):
    """(file, source, module, node) of each refused import of the spec's files, in order."""
    have = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    have.update(m.partition(".")[0] for m in list(sys.modules))  # loaded already: __main__, site's
    path = [os.path.join(os.getcwd(), spec["dir"])] + sys.path[1:]
    known = {}
    for name in spec["files"]:
        try:
            with open(name, "rb") as f:
                source = f.read()
            tree = ast.parse(source, name)
        except (OSError, SyntaxError, ValueError):
            continue
        for top, node in checked_imports(tree):
            if top not in known:
                known[top] = top in have or importlib.machinery.PathFinder.find_spec(top, path) is not None
            if not known[top]:
                yield name, source, top, node


def refuse_imports(spec):
    """Reports the first refused import and ends the run; returns when nothing is refused."""
    refused = list(import_refusals(spec))
    if not refused:
        return
    name, source, top, node = refused[0]
    lines = source.splitlines()
    text = lines[node.lineno - 1] if node.lineno <= len(lines) else b""
    column = len(text[:node.col_offset].decode("utf-8", "replace")) + 1
    end = getattr(node, "end_col_offset", None) if getattr(node, "end_lineno", None) == node.lineno else None
    width = len(text[node.col_offset:end].decode("utf-8", "replace").rstrip()) if end else 1
    others = sorted({r[2] for r in refused} - {top})
    message = "No module named %r: the import was refused before the code ran (nothing in this sandbox provides it)%s. %s" % (
        top, "; also refused: " + ", ".join(map(repr, others)) if others else "", spec["allowed"])
    shown = name if spec.get("result") else os.path.join(os.getcwd(), name)
    line = text.decode("utf-8", "replace")
    stack = '  File "%s", line %d\n    %s\n    %s%s\nModuleNotFoundError: %s\n' % (
        shown, node.lineno, line.strip(), " " * (column - 1 - (len(line) - len(line.lstrip()))), "^" * max(width, 1), message)
    if spec.get("result"):
        error = {"type": "dependency", "name": "ModuleNotFoundError", "message": message,
                 "line": node.lineno, "column": column, "stack": stack}
        with open(spec["result"], "w", encoding="utf-8") as f:
            json.dump({"error": error}, f)
        sys.exit(0)
    sys.stderr.write(stack)
    sys.exit(1)



# ---- display(): files returned through the outputs directory --------------------------------
# The program's builtins display(obj, name=None, mime_type=None) and display_file(path), and
# matplotlib's figures: plt.show() and the figures left open when the program ends are saved as
# figure-<n>.png there. The directory is $CONDUCTOR_OUTPUTS (config.OutputsEnv), a per-run tmpfs
# the host collects as hostile input when the run ends; none on a server without outputs.
OUTPUT_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
                     "image/svg+xml": "svg", "text/csv": "csv", "application/json": "json",
                     "text/markdown": "md", "text/html": "html", "text/plain": "txt", "application/pdf": "pdf"}
output_counters = {}


def outputs_dir():
    d = os.environ.get("CONDUCTOR_OUTPUTS")
    if not d or not os.path.isdir(d):
        raise RuntimeError("display(): this server gives runs no outputs directory, so no file can be returned "
                           "(only its admin can turn it on: MCP_CONDUCTOR_OUTPUTS_SIZE)")
    return d


def check_output_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("display(): name %r must be a relative path without '.' or '..' components or control characters" % (name,))


def write_output(data, name, prefix, ext):
    """Writes data as name, or as the next free <prefix>-<n>.<ext> (created exclusively), in the
    outputs directory; returns the name."""
    d = outputs_dir()
    if name is not None:
        check_output_name(name)
        if "/" in name:
            os.makedirs(os.path.join(d, os.path.dirname(name)), exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        return name
    while True:
        n = output_counters[prefix] = output_counters.get(prefix, 0) + 1
        name = "%s-%d.%s" % (prefix, n, ext)
        try:
            with open(os.path.join(d, name), "xb") as f:
                f.write(data)
            return name
        except FileExistsError:
            continue


def display(obj, name=None, mime_type=None):
    """Returns obj as a file of the run's result: bytes as they are (mime_type names their type),
    a str as text, a PIL image or a matplotlib figure as PNG. Returns {"name", "bytes"}."""
    import io
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    elif isinstance(obj, str):
        data, mime_type = obj.encode("utf-8"), mime_type or "text/plain"
    elif type(obj).__module__.startswith("matplotlib") and hasattr(obj, "savefig"):
        buf = io.BytesIO()
        obj.savefig(buf, format="png")
        data, mime_type = buf.getvalue(), "image/png"
    elif type(obj).__module__.startswith("PIL") and hasattr(obj, "save"):
        buf = io.BytesIO()
        obj.save(buf, format="PNG")
        data, mime_type = buf.getvalue(), "image/png"
    else:
        raise TypeError("display(): cannot display a %s: give bytes, a str, a PIL image or a matplotlib figure" % type(obj).__name__)
    ext = OUTPUT_EXTENSIONS.get((mime_type or "").split(";")[0].strip().lower(), "bin")
    if name is not None and mime_type and "." not in os.path.basename(name):
        name += "." + ext
    name = write_output(data, name, "output", ext)
    return {"name": name, "bytes": len(data)}


def display_file(path):
    """Names a workspace file (a path relative to the workspace) to return as it is, not copied."""
    path = str(path)
    if path.startswith("./"):
        path = path[2:]
    check_output_name(path)
    with open(os.path.join(outputs_dir(), ".workspace-files"), "a", encoding="utf-8") as f:
        f.write(path + "\n")
    return {"name": path}


def save_figures():
    """Saves matplotlib's open figures as figure-<n>.png and closes them; only when the program
    imported pyplot (never imported here: it is slow)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None or not os.environ.get("CONDUCTOR_OUTPUTS"):
        return
    import io
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png")
        write_output(buf.getvalue(), None, "figure", "png")
    plt.close("all")


class ShowHook:
    """A meta path finder that, once matplotlib.pyplot is loaded, makes its show() save_figures."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)

            def show(*args, **kwargs):
                save_figures()
            show.__doc__ = module.show.__doc__
            module.show = show
        spec.loader.exec_module = exec_module
        return spec


import builtins

builtins.display, builtins.display_file = display, display_file
sys.meta_path.insert(0, ShowHook())

name = sys.stdin.readline().rstrip("\n")
if not name:
    sys.exit(0)  # the run ended before it started: nothing to run
# fd 3, when the launcher gave one (engine/warm.ts: run_python_code's mcpFactory channel), is the
# runner's: the program's own children never inherit it, and deno's note of it leaves the
# environment.
if os.environ.pop("DENO_EXTRA_STDIO_FDS", None) is not None:
    try:
        os.set_inheritable(3, False)
    except OSError:
        pass
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)  # the program's stdin is at end of file, as with stdin "null"
os.close(null)

if import_check and os.path.isfile(import_check):
    with open(import_check, encoding="utf-8") as f:
        refuse_imports(json.load(f))

import types

path = os.path.join(os.getcwd(), name)
sys.argv = [name]
sys.path[0] = os.path.dirname(path)
main = types.ModuleType("__main__")
main.__dict__.update(main_names)
main.__file__ = path
main.__cached__ = None
main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
sys.modules["__main__"] = main
del main_names
try:
    with open(path, "rb") as f:
        source = f.read()
    known = precompiled.get(path)
    if known is not None and known[0] == source:
        code = known[1]
        main.__dict__["__conductor_precompiled__"] = precompiled  # for the runner's own loads
    else:
        # bytes: compile honours the file's coding declaration; dont_inherit: not this file's flags.
        code = compile(source, path, "exec", dont_inherit=True)
    try:
        exec(code, main.__dict__)
    finally:
        try:
            save_figures()
        except Exception as e:  # the program's result stands; say why the figures are missing
            print("conductor: the open matplotlib figures could not be saved: %s" % e, file=sys.stderr)
except SystemExit:
    raise
except BaseException as e:
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    # No frame of the file (a SyntaxError while compiling it): no traceback, as python prints.
    e.__traceback__ = tb
    sys.excepthook(type(e), e, tb)
    sys.exit(1)
