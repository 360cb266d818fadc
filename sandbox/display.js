// conductor's display(): the global with which code returns files through its outputs directory
// (/outputs, config.OutputsDir, a per-run tmpfs the host collects when the run ends). The
// bootstrap imports it for run_deno_code; execute_code's deno loads it with --preload. It only
// writes files there: what the client gets is decided by the host, which treats the directory
// as hostile input. Code may write the directory itself just as well.
//
//   await display(data, { name?, mimeType? })  data: Uint8Array | ArrayBuffer | Blob | string;
//     writes /outputs/<name> (default output-<n>.<ext of mimeType>) and returns { name, bytes }.
//   await display.workspaceFile(path)  names a workspace file (relative to the workspace) to
//     return as it is, without copying it.
const dir = "/outputs";
const listFile = dir + "/.workspace-files";
const extensions = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/gif": "gif",
  "image/webp": "webp",
  "image/svg+xml": "svg",
  "text/csv": "csv",
  "application/json": "json",
  "text/markdown": "md",
  "text/html": "html",
  "text/plain": "txt",
  "application/pdf": "pdf",
};
let counter = 0;

// unavailable turns a failed write into the reason: no outputs directory on this server.
function unavailable(err) {
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied || err?.code === "EROFS" || err instanceof Deno.errors.NotFound) {
    return new Error(
      "display(): this server gives runs no outputs directory, so no file can be returned (only its admin can turn it on: MCP_CONDUCTOR_OUTPUTS_SIZE)",
      { cause: err },
    );
  }
  return err;
}

function checkName(name) {
  if (typeof name !== "string" || name === "" || name.startsWith("/") || name.split("/").some((c) => c === "" || c === "." || c === "..") ||
    /[\u0000-\u001f\u007f]/.test(name)) {
    throw new TypeError(`display(): name ${JSON.stringify(name)} must be a relative path without "." or ".." components or control characters`);
  }
}

async function bytesOf(data) {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  throw new TypeError("display(): data must be a Uint8Array, an ArrayBuffer, a Blob or a string");
}

async function display(data, options = {}) {
  const bytes = await bytesOf(data);
  let mimeType = options?.mimeType ?? (data instanceof Blob && data.type ? data.type : typeof data === "string" ? "text/plain" : undefined);
  if (mimeType !== undefined) mimeType = String(mimeType).split(";")[0].trim().toLowerCase();
  const ext = extensions[mimeType] ?? "bin";
  let name = options?.name;
  try {
    if (name === undefined || name === null) {
      // The next free output-<n>.<ext>: created exclusively, so display() never overwrites.
      for (;;) {
        name = `output-${++counter}.${ext}`;
        try {
          await Deno.writeFile(`${dir}/${name}`, bytes, { createNew: true });
          break;
        } catch (err) {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
        }
      }
    } else {
      name = String(name);
      if (mimeType !== undefined && !/\.[^./]+$/.test(name)) name += "." + ext;
      checkName(name);
      if (name.includes("/")) await Deno.mkdir(`${dir}/${name.slice(0, name.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
  } catch (err) {
    throw unavailable(err);
  }
  return { name, bytes: bytes.byteLength };
}

display.workspaceFile = async function workspaceFile(path) {
  path = String(path).replace(/^\.\//, "");
  checkName(path);
  try {
    await Deno.writeTextFile(listFile, path + "\n", { append: true });
  } catch (err) {
    throw unavailable(err);
  }
  return { name: path };
};

Object.defineProperty(globalThis, "display", { value: Object.freeze(display), writable: false, enumerable: false, configurable: false });
