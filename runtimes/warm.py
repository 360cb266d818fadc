# conductor's pre-started Python (Runtime.Warm): started with the interpreter's own flags while
# the sandbox boots, it waits for the entrypoint's name on stdin, then runs that file as
# `python <file>` would: sys.argv, sys.path[0] (the file's directory), a fresh __main__ module
# with __file__, the exit status, and a traceback that starts at the file's own frame.
main_names = dict(globals())  # what this interpreter gives a __main__ module before it runs
import os
import sys

# What run_python_code's runner (pyrun.py) needs, loaded while the sandbox boots, not per request.
import ast  # noqa: F401
import json  # noqa: F401

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

import importlib.machinery
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
    # bytes: compile honours the file's coding declaration; dont_inherit: not this file's flags.
    exec(compile(source, path, "exec", dont_inherit=True), main.__dict__)
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
