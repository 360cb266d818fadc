# conductor's run_python_code runner (runtimes.PythonRunner): the entrypoint the pre-started
# interpreter is handed for a run_python_code request. It runs the user's code (main.py beside it)
# as a module whose last expression statement is the result, with top-level await, the request's
# globals as read-only names, and writes the outcome to the result file as one JSON object:
# {"value": <encoded>, "truncated": bool} or {"error": {type, name, message, line, column, stack}}.
# Line and column numbers are the user's own (the code is compiled as written, from "main.py").
import ast
import builtins
import json
import os
import sys
import types

CODE = "main.py"
HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = os.path.join(HERE, "result.json")
GLOBALS = os.path.join(HERE, "globals.json")
FACTORY = os.path.join(HERE, "mcp.py")  # runtimes.PythonFactory
VALUE = "__conductor_value__"
LIMIT = 262144  # bytes of encoded value, as run_deno_code's (sandbox.DefaultResultLimit)
MAX_DEPTH = 200
SAFE_INT = 2**53


class Truncated(Exception):
    pass


class Encoder:
    """Encodes a Python value as faithful JSON: JSON values as they are, others tagged with $type."""

    def __init__(self, limit):
        self.left = limit
        self.truncated = False

    def spend(self, n):
        self.left -= n
        if self.left < 0:
            raise Truncated()

    def encode(self, v):
        try:
            return self.value(v, "$", [], 0)
        except Truncated:
            self.truncated = True
            return {"$type": "truncated"}

    def value(self, v, path, stack, depth):
        if v is None or isinstance(v, bool):
            self.spend(5)
            return v
        if type(v) is str:
            self.spend(len(v) + 2)
            return v
        # A value of a module's type exists only if the code imported that module: check the
        # types of the modules already loaded, never import one to look.
        mods = sys.modules
        enum, decimal, fractions, datetime = (mods.get(m) for m in ("enum", "decimal", "fractions", "datetime"))
        if enum is not None and isinstance(v, enum.Enum):
            self.spend(40)
            return {"$type": "enum", "class": type(v).__qualname__, "name": v.name,
                    "value": self.value(v.value, path + ".value", stack, depth + 1)}
        if isinstance(v, int):
            self.spend(24)
            if type(v) is not int:  # an int subclass (IntFlag handled above)
                return {"$type": "object", "class": type(v).__qualname__, "value": int(v)}
            if -SAFE_INT <= v <= SAFE_INT:
                return v
            s = str(v) if v.bit_length() < 100_000 else None
            if s is None:
                raise Truncated()
            self.spend(len(s))
            return {"$type": "bigint", "value": s}
        if isinstance(v, float):
            self.spend(24)
            if v != v:
                return {"$type": "number", "value": "NaN"}
            if v in (float("inf"), float("-inf")):
                return {"$type": "number", "value": "Infinity" if v > 0 else "-Infinity"}
            if v == 0 and str(v).startswith("-"):
                return {"$type": "number", "value": "-0"}
            return v
        if isinstance(v, str):
            self.spend(len(v) + 2)
            return v
        if isinstance(v, complex):
            self.spend(40)
            return {"$type": "complex", "real": self.value(v.real, path, stack, depth + 1),
                    "imag": self.value(v.imag, path, stack, depth + 1)}
        if decimal is not None and isinstance(v, decimal.Decimal):
            self.spend(len(str(v)) + 30)
            return {"$type": "decimal", "value": str(v)}
        if fractions is not None and isinstance(v, fractions.Fraction):
            self.spend(len(str(v)) + 30)
            return {"$type": "fraction", "value": str(v)}
        if datetime is not None and isinstance(v, datetime.datetime):
            self.spend(60)
            return {"$type": "datetime", "value": v.isoformat()}
        if datetime is not None and isinstance(v, datetime.date):
            self.spend(40)
            return {"$type": "date", "value": v.isoformat()}
        if datetime is not None and isinstance(v, datetime.time):
            self.spend(40)
            return {"$type": "time", "value": v.isoformat()}
        if datetime is not None and isinstance(v, datetime.timedelta):
            self.spend(40)
            return {"$type": "timedelta", "seconds": v.total_seconds()}
        if isinstance(v, (bytes, bytearray, memoryview)):
            import binascii

            b = bytes(v)
            self.spend(len(b) * 4 // 3 + 40)
            return {"$type": type(v).__name__, "base64": binascii.b2a_base64(b, newline=False).decode()}
        if isinstance(v, BaseException):
            return self.exception(v, path, stack, depth)
        if isinstance(v, type):
            self.spend(40)
            return {"$type": "class", "name": v.__qualname__}
        if isinstance(v, types.ModuleType):
            self.spend(40)
            return {"$type": "module", "name": v.__name__}
        if callable(v) and isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            self.spend(40)
            return {"$type": "function", "name": getattr(v, "__qualname__", repr(v))}
        if isinstance(v, types.CoroutineType):
            self.spend(40)
            return {"$type": "coroutine", "name": v.__qualname__}
        if isinstance(v, (types.GeneratorType, types.AsyncGeneratorType)):
            self.spend(40)
            return {"$type": "generator", "name": v.__qualname__}
        if isinstance(v, range):
            self.spend(60)
            return {"$type": "range", "start": v.start, "stop": v.stop, "step": v.step}
        # Containers: cycles and depth.
        if any(o is v for o, _ in stack):
            self.spend(40)
            return {"$type": "circular", "path": stack_path(stack, v)}
        if depth >= MAX_DEPTH:
            raise Truncated()
        stack.append((v, path))
        try:
            return self.container(v, path, stack, depth)
        finally:
            stack.pop()

    def items(self, it, path, stack, depth):
        out = []
        for i, x in enumerate(it):
            self.spend(1)
            out.append(self.value(x, "%s[%d]" % (path, i), stack, depth + 1))
        return out

    def container(self, v, path, stack, depth):
        if isinstance(v, list) and type(v) is list:
            self.spend(2)
            return self.items(v, path, stack, depth)
        if isinstance(v, tuple) and hasattr(v, "_fields"):
            self.spend(40)
            return {"$type": "namedtuple", "class": type(v).__qualname__,
                    "value": self.mapping(zip(v._fields, v), path, stack, depth)}
        if isinstance(v, tuple):
            self.spend(20)
            return {"$type": "tuple", "values": self.items(v, path, stack, depth)}
        if isinstance(v, (set, frozenset)):
            self.spend(20)
            vals = list(v)
            try:
                vals.sort()
            except TypeError:
                pass
            return {"$type": type(v).__name__ if type(v) in (set, frozenset) else "set",
                    "values": self.items(vals, path, stack, depth)}
        if isinstance(v, dict):
            if all(type(k) is str for k in v) and "$type" not in v and type(v) is dict:
                self.spend(2)
                return self.mapping(v.items(), path, stack, depth)
            if all(type(k) is str for k in v) and type(v) is dict:
                self.spend(30)
                return {"$type": "object", "value": self.mapping(v.items(), path, stack, depth)}
            self.spend(30)
            entries = []
            for i, (k, x) in enumerate(v.items()):
                entries.append([self.value(k, "%s.keys[%d]" % (path, i), stack, depth + 1),
                                self.value(x, "%s[%r]" % (path, k), stack, depth + 1)])
            out = {"$type": "dict", "entries": entries}
            if type(v) is not dict:
                out["class"] = type(v).__qualname__
            return out
        fields = getattr(type(v), "__dataclass_fields__", None)
        if isinstance(fields, dict) and "dataclasses" in sys.modules:
            dataclasses = sys.modules["dataclasses"]
            self.spend(40)
            return {"$type": "dataclass", "class": type(v).__qualname__,
                    "value": self.mapping(((f.name, getattr(v, f.name)) for f in dataclasses.fields(v)), path, stack, depth)}
        mod = type(v).__module__
        if mod == "numpy" and hasattr(v, "tolist") and hasattr(v, "shape"):
            self.spend(60)
            return {"$type": "ndarray", "dtype": str(v.dtype), "shape": list(v.shape),
                    "values": self.value(v.tolist(), path, stack, depth + 1)}
        if isinstance(v, list):  # a list subclass
            self.spend(40)
            return {"$type": "object", "class": type(v).__qualname__, "value": self.items(v, path, stack, depth)}
        self.spend(40)
        attrs = getattr(v, "__dict__", None)
        if isinstance(attrs, dict):
            return {"$type": "object", "class": type(v).__qualname__,
                    "value": self.mapping(((k, x) for k, x in attrs.items() if type(k) is str), path, stack, depth)}
        r = repr(v)[:200]
        self.spend(len(r))
        return {"$type": "object", "class": type(v).__qualname__, "repr": r}

    def mapping(self, pairs, path, stack, depth):
        out = {}
        for k, x in pairs:
            self.spend(len(k) + 4)
            out[k] = self.value(x, path + "." + k, stack, depth + 1)
        return out

    def exception(self, e, path, stack, depth):
        self.spend(80)
        out = {"$type": "exception", "name": type(e).__qualname__, "message": str(e)[:4096]}
        if e.__traceback__ is not None:
            out["traceback"] = user_traceback(e)[:8192]
        cause = e.__cause__ or e.__context__
        if cause is not None and depth < 8 and not any(o is cause for o, _ in stack):
            stack.append((e, path))
            try:
                out["cause"] = self.value(cause, path + ".cause", stack, depth + 1)
            finally:
                stack.pop()
        return out


def stack_path(stack, v):
    for o, p in stack:
        if o is v:
            return p
    return "$"


def user_frames(tb):
    """The traceback's frames in the user's code (the runner's own are left out)."""
    import traceback

    return [f for f in traceback.extract_tb(tb) if f.filename == CODE]


def user_traceback(e):
    import traceback

    frames = user_frames(e.__traceback__)
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(e), e)
    return "".join(lines)


def error_of(e):
    if isinstance(e, SyntaxError) and e.filename == CODE:
        import traceback

        return {"type": "syntax", "name": type(e).__name__, "message": e.msg or str(e),
                "line": e.lineno or 0, "column": e.offset or 0,
                "stack": "".join(traceback.format_exception_only(type(e), e))}
    frames = user_frames(e.__traceback__)
    line, col = 0, 0
    if frames:
        line = frames[-1].lineno or 0
        colno = getattr(frames[-1], "colno", None)  # 0-based, Python 3.11+
        col = colno + 1 if colno is not None else 0
    name = type(e).__qualname__
    if type(e).__module__ not in ("builtins", "__main__"):
        name = type(e).__module__ + "." + name
    return {"type": "runtime", "name": name, "message": str(e), "line": line or 0, "column": col,
            "stack": user_traceback(e)}


def prepare(src, names):
    """Parses and compiles the code: its last expression statement becomes the result."""
    tree = ast.parse(src, CODE)
    for node, name in module_bindings(tree):
        if name in names:
            lines = src.splitlines()
            whose = "of conductor's" if name in ("mcpFactory", "McpError") else "given with the request"
            err = SyntaxError("%r is a read-only global %s; use another name" % (name, whose))
            err.filename, err.lineno, err.offset = CODE, node.lineno, node.col_offset + 1
            err.text = lines[node.lineno - 1] if 0 < node.lineno <= len(lines) else None
            raise err
    has_value = bool(tree.body) and isinstance(tree.body[-1], ast.Expr)
    if has_value:
        last = tree.body[-1]
        assign = ast.Assign(targets=[ast.Name(id=VALUE, ctx=ast.Store())], value=last.value)
        tree.body[-1] = ast.copy_location(assign, last)
        ast.fix_missing_locations(tree)
    code = compile(tree, CODE, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    return code, has_value


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
          ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def module_bindings(tree):
    """(node, name) for every name the module's own scope binds or deletes: assignments, imports,
    definitions, and `global` statements in nested scopes; names local to functions, classes and
    comprehensions are not the module's."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, SCOPES):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node, node.name
            for inner in ast.walk(node):
                if isinstance(inner, ast.Global):
                    for n in inner.names:
                        yield inner, n
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            yield node, node.id
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name != "*":
                    yield node, (a.asname or a.name).split(".")[0]
        elif isinstance(node, ast.ExceptHandler) and node.name:
            yield node, node.name
        todo.extend(ast.iter_child_nodes(node))


def open_factory():
    """(mcpFactory, McpError) when the engine wrote the client (mcp.py beside the runner, on a server
    with upstreams) and the launcher's relay answers on fd 3, else None. The client is compiled only
    there, not in every run."""
    if not os.path.exists(FACTORY):
        return None
    ns = {"__name__": "conductor_mcp"}
    with open(FACTORY, "rb") as f:
        source = f.read()
    # Compiled while the sandbox booted, when the pre-started interpreter was given it (warm.py).
    known = globals().get("__conductor_precompiled__", {}).get(os.path.abspath(FACTORY))
    code = known[1] if known is not None and known[0] == source else compile(source, FACTORY, "exec", dont_inherit=True)
    exec(code, ns)
    factory = ns["open_factory"]()
    return None if factory is None else (factory, ns["McpError"])


def main():
    with open(os.path.join(os.getcwd(), CODE), encoding="utf-8") as f:
        src = f.read()
    given = {}
    if os.path.exists(GLOBALS):
        with open(GLOBALS, encoding="utf-8") as f:
            given = json.load(f)
    mcp = open_factory()
    if mcp is not None:
        given["mcpFactory"], given["McpError"] = mcp
    sys.path[0] = os.getcwd()
    sys.argv = [CODE]
    outcome = {}
    try:
        code, has_value = prepare(src, given)
        # The given globals are a layer under the module: readable by name, never its own.
        layer = dict(builtins.__dict__)
        layer.update(given)
        module = types.ModuleType("__main__")
        module.__file__ = os.path.join(os.getcwd(), CODE)
        module.__builtins__ = layer
        sys.modules["__main__"] = module
        ns = module.__dict__
        result = eval(code, ns)
        if result is not None and isinstance(result, types.CoroutineType):
            import asyncio

            asyncio.run(result)
        value = ns.pop(VALUE, None) if has_value else None
        if isinstance(value, types.CoroutineType):
            import asyncio

            value = asyncio.run(value)
        enc = Encoder(LIMIT)
        outcome = {"value": enc.encode(value), "truncated": enc.truncated}
    except SystemExit as e:
        code = e.code
        if code is None or code == 0:
            outcome = {"value": None, "truncated": False}
        else:
            if not isinstance(code, int):
                print(code, file=sys.stderr)
            outcome = {"error": {"type": "runtime", "name": "SystemExit", "message": "sys.exit(%r)" % (code,),
                                 "line": 0, "column": 0, "stack": ""}}
    except BaseException as e:
        outcome = {"error": error_of(e)}
    sys.stdout.flush()
    sys.stderr.flush()
    with open(RESULT, "w", encoding="utf-8") as f:
        json.dump(outcome, f, allow_nan=False)


if __name__ == "__main__":
    main()
