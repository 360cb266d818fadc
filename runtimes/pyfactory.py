# conductor's mcpFactory client for run_python_code (runtimes.PythonFactory): the engine writes it
# beside the runner (pyrun.py) on a server with upstreams, and the runner loads it before the
# user's code runs.
#
# fd 3 is one end of a socketpair whose other end the launcher holds (engine/launcher.ts): it relays
# calls to the host's mcpFactory, which applies the limits, allowlists and secrets as it does for
# run_deno_code. The launcher writes one line first, {"maxLine": N}, or closes its end when the
# server has no upstreams; the runner reads that before the user's code runs, so the code only ever
# finds the channel already taken (it is in this process; nothing else in the sandbox can reach
# it). Requests are lines {id, method, params}; replies, lines {id, result} or {id, error}, in any
# order: one reader thread hands each to its call's future, on that future's loop, so the calls of
# asyncio.gather run in parallel. A thread, not a task: the channel outlives each asyncio.run.
import json
import os

CHANNEL_FD = 3


class McpError(Exception):
    """An mcpFactory call that failed: the upstream's error, a refusal of the limits, or the channel."""


McpError.__module__ = "builtins"  # named as the code sees it: McpError, a global


class Channel:
    def __init__(self, fd, max_line, rest):
        import threading

        self.fd = fd
        self.max_line = max_line
        self.rest = rest  # what was read after the first line
        self.lock = threading.Lock()  # pending, next_id, closed, reader
        self.write_lock = threading.Lock()  # one request's line at a time
        self.pending = {}  # id -> asyncio future
        self.next_id = 1
        self.closed = None  # why, once the channel is gone
        self.reader = None

    async def call(self, method, params):
        import asyncio

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self.lock:
            if self.closed is not None:
                raise McpError(self.closed)
            cid = self.next_id
            self.next_id += 1
            line = (json.dumps({"id": cid, "method": method, "params": params}, allow_nan=False,
                               separators=(",", ":")) + "\n").encode()
            if len(line) > self.max_line:
                raise McpError("this %s call's request is %d bytes, over the %d bytes the channel takes; it was not sent"
                               % (method, len(line), self.max_line))
            self.pending[cid] = fut
            if self.reader is None:
                import threading

                self.reader = threading.Thread(target=self.read, name="mcpFactory", daemon=True)
                self.reader.start()
        try:
            with self.write_lock:
                view = memoryview(line)
                while view:
                    view = view[os.write(self.fd, view):]
        except OSError as e:
            self.close("the mcpFactory channel is closed (%s)" % e.strerror)
        try:
            return await fut
        finally:
            with self.lock:
                self.pending.pop(cid, None)

    def read(self):
        buf = bytearray(self.rest)
        scan = 0
        why = "the mcpFactory channel closed"
        while True:
            nl = buf.find(b"\n", scan)
            if nl < 0:
                scan = len(buf)
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                continue
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            scan = 0
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if msg.get("id") is None:
                # About no call of the runner's (lines the code wrote itself): the relay's last word.
                err = msg.get("error")
                if msg.get("closed") is True and isinstance(err, dict):
                    why = str(err.get("message"))
                continue
            with self.lock:
                fut = self.pending.pop(msg["id"], None) if isinstance(msg["id"], int) else None
            if fut is not None:
                settle(fut, msg)
        self.close(why)

    def close(self, why):
        with self.lock:
            if self.closed is None:
                self.closed = why
            pending, self.pending = self.pending, {}
        for fut in pending.values():
            settle(fut, {"error": {"message": why}})


def settle(fut, msg):
    """Resolves fut with msg's result or fails it with its error, on fut's own loop."""

    def done():
        if fut.done():
            return  # cancelled meanwhile
        err = msg.get("error")
        if err is not None:
            fut.set_exception(McpError(str(err.get("message") if isinstance(err, dict) else err)))
        else:
            fut.set_result(msg.get("result"))

    try:
        fut.get_loop().call_soon_threadsafe(done)
    except RuntimeError:
        pass  # its loop is closed: nobody awaits it any more


class Frozen:
    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError("%s is read-only" % type(self).__name__)

    __delattr__ = __setattr__


class McpServer(Frozen):
    """One upstream server, as mcpFactory.load(name) returns it. Every method is a coroutine."""

    __slots__ = ("name", "_channel")

    def __init__(self, channel, name):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_channel", channel)

    def __repr__(self):
        return "<mcpFactory server %r>" % self.name

    def _call(self, method, **params):
        return self._channel.call(method, dict(params, server=self.name))

    async def list_tools(self):
        return await self._call("listTools")

    async def call_tool(self, name, args=None):
        return await self._call("callTool", tool=name, args={} if args is None else args)

    async def list_resources(self):
        return await self._call("listResources")

    async def read_resource(self, uri):
        return await self._call("readResource", uri=uri)

    async def list_prompts(self):
        return await self._call("listPrompts")

    async def get_prompt(self, name, args=None):
        return await self._call("getPrompt", name=name, args={} if args is None else args)

    listTools, callTool, listResources, readResource = list_tools, call_tool, list_resources, read_resource
    listPrompts, getPrompt = list_prompts, get_prompt


class McpFactory(Frozen):
    """The mcpFactory global: load(name) names an upstream server; list_servers() lists them."""

    __slots__ = ("_channel",)

    def __init__(self, channel):
        object.__setattr__(self, "_channel", channel)

    def __repr__(self):
        return "<mcpFactory>"

    def load(self, name):
        if not isinstance(name, str) or name == "":
            raise TypeError("mcpFactory.load(name): name must be a server name string")
        return McpServer(self._channel, name)

    async def list_servers(self):
        return await self._channel.call("listServers", {})

    listServers = list_servers


def open_factory(fd=CHANNEL_FD):
    """The mcpFactory global, or None when there is no channel or the launcher closed it."""
    import stat

    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
    except OSError:
        return None
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    first, _, rest = buf.partition(b"\n")
    try:
        max_line = int(json.loads(first)["maxLine"])
    except (ValueError, TypeError, KeyError):
        return None
    return McpFactory(Channel(fd, max_line, rest))
