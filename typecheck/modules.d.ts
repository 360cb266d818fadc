
// Packages the admin allows are imported as npm: or jsr: specifiers (and
// deno's node: built-ins); their declarations are not at hand when checking,
// so what they export is any.
declare module "npm:*";
declare module "jsr:*";
declare module "node:*";
