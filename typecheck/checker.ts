// conductor's type checker: TypeScript's compiler, loaded once, checking one
// program after another inside a sandbox. It never runs the code it checks:
// the code is text handed to the compiler. The host sends each request as the
// reply to the checker's previous "next" call (mcpFactory's channel), and gets
// that request's diagnostics with the following call.
//
// Lines and columns are counted the way conductor's program package counts
// them (lines end at \n, \r\n or \r; columns in UTF-16 code units; a byte
// order mark takes no column), not with TypeScript's own line map, which
// also breaks lines at U+2028 and U+2029.

// deno-lint-ignore-file no-explicit-any
declare const mcpFactory: {
  load(name: string): { callTool(tool: string, args: unknown): Promise<any> };
};

const DIR = "/conductor/typescript"; // typecheck.InRootDir
const CHECK = "/check/"; // the virtual directory of a check's own files
const MAX_DIAGNOSTICS = 50;

const mod: { exports: any } = { exports: {} };
// typescript.js is CommonJS; with neither require nor process it sets up no
// file system of its own (the host below is the only one).
new Function("module", "exports", "require", "process", Deno.readTextFileSync(`${DIR}/typescript.js`))(
  mod,
  mod.exports,
  undefined,
  undefined,
);
const ts = mod.exports;

const options = {
  target: ts.ScriptTarget.ESNext,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  moduleDetection: ts.ModuleDetectionKind.Force,
  lib: ["lib.esnext.d.ts"],
  types: [],
  strict: true,
  noImplicitOverride: true,
  noEmit: true,
  skipLibCheck: true,
  allowImportingTsExtensions: true,
  allowJs: true,
  useDefineForClassFields: true,
};

// Parsed files stay while their text does: the lib files are parsed (and
// bound) once; a check's own files are parsed again only when they change.
const parsed = new Map<string, { text: string; sf: any }>();
const files = new Map<string, string>(); // the current check's own files

function readFile(name: string): string | undefined {
  if (name.startsWith(CHECK)) return files.get(name);
  if (!name.startsWith(DIR + "/") || name.includes("..")) return undefined;
  try {
    return Deno.readTextFileSync(name);
  } catch {
    return undefined;
  }
}

const host = {
  getSourceFile(name: string, languageVersion: any) {
    const text = readFile(name);
    if (text === undefined) return undefined;
    const p = parsed.get(name);
    if (p && p.text === text) return p.sf;
    const sf = ts.createSourceFile(name, text, languageVersion, false);
    parsed.set(name, { text, sf });
    return sf;
  },
  getDefaultLibFileName: () => `${DIR}/lib.esnext.d.ts`,
  getDefaultLibLocation: () => DIR,
  writeFile: () => {},
  getCurrentDirectory: () => CHECK,
  getDirectories: () => [],
  getCanonicalFileName: (f: string) => f,
  useCaseSensitiveFileNames: () => true,
  getNewLine: () => "\n",
  fileExists: (f: string) => readFile(f) !== undefined,
  readFile,
  directoryExists: (d: string) => d === DIR || d + "/" === CHECK,
};

// position turns a UTF-16 offset of text into a 1-based line and column.
function position(text: string, off: number): [number, number] {
  let line = 1, start = 0;
  for (let i = 0; i < off && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) {
      line++;
      start = i + 1;
    }
  }
  let col = off - start + 1;
  if (line === 1 && text.charCodeAt(0) === 0xfeff && off > 0) col--;
  return [line, col];
}

interface Request {
  id: number;
  code: string; // the module as it runs
  globals: string; // conductor.d.ts
  decls: string; // the upstreams' declarations
}

let oldProgram: any = undefined;

function check(req: Request) {
  files.clear();
  const main = CHECK + "main.ts";
  const roots = [`${DIR}/lib.deno.d.ts`, CHECK + "conductor.d.ts", main];
  files.set(CHECK + "conductor.d.ts", req.globals);
  files.set(main, req.code);
  if (req.decls) {
    files.set(CHECK + "upstreams.d.ts", req.decls);
    roots.splice(2, 0, CHECK + "upstreams.d.ts");
  }
  const program = ts.createProgram({ rootNames: roots, options, host, oldProgram });
  oldProgram = program;
  const sf = program.getSourceFile(main);
  const declProblems = req.decls
    ? program.getSyntacticDiagnostics(program.getSourceFile(CHECK + "upstreams.d.ts"))
    : [];
  if (declProblems.length > 0) {
    const d = declProblems[0];
    const [line, col] = position(req.decls, d.start ?? 0);
    throw new Error(
      `the upstreams' declarations do not parse: ${line}:${col}: TS${d.code}: ` +
        ts.flattenDiagnosticMessageText(d.messageText, "\n"),
    );
  }
  let diags = [...program.getSyntacticDiagnostics(sf)];
  if (diags.length === 0) diags = [...program.getSemanticDiagnostics(sf)];
  const out = [];
  for (const d of diags) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    const [line, column] = position(req.code, d.start ?? 0);
    out.push({ line, column, code: d.code, message: ts.flattenDiagnosticMessageText(d.messageText, "\n") });
    if (out.length >= MAX_DIAGNOSTICS) break;
  }
  return out;
}

// Parse and bind the libraries now, so the first real check is as fast as
// the others.
const warm = performance.now();
check({ id: 0, code: "const x: number = 1;\nawait Deno.readTextFile(String(x));\n", globals: "", decls: "" });
const warmMs = Math.round(performance.now() - warm);

const hostSide = mcpFactory.load("typecheck");
let reply: any = { id: 0, diagnostics: [], ms: warmMs, version: ts.version };
for (;;) {
  const req = await hostSide.callTool("next", reply);
  if (!req || req.stop) break;
  const t0 = performance.now();
  try {
    reply = { id: req.id, diagnostics: check(req as Request) };
  } catch (err) {
    reply = { id: req.id, error: String((err as Error)?.message ?? err) };
  }
  reply.ms = Math.round(performance.now() - t0);
}
export default "stopped";
