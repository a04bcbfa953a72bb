// Saving and restoring the whole drawing set: a JSON file, and a share link with the state in the
// URL fragment (compressed where the browser can). Pure functions over plain objects.
import { packStrokes, unpackStrokes } from "./strokes.js";

export const FORMAT = "reptile-demo-drawings";
export const FORMAT_VERSION = 1;

// snapshot: {classes: [{name, examples: [strokes...]}], tests: [strokes...], settings: {...}}
export function toDocument(snapshot, modelName) {
  return {
    format: FORMAT,
    format_version: FORMAT_VERSION,
    model: modelName,
    settings: snapshot.settings,
    classes: snapshot.classes.map((c) => ({ name: c.name, examples: c.examples.map(packStrokes) })),
    tests: snapshot.tests.map(packStrokes),
  };
}

export function fromDocument(doc, limits) {
  if (!doc || typeof doc !== "object" || doc.format !== FORMAT) throw new Error("this is not a saved drawing set of this demo");
  if (doc.format_version !== FORMAT_VERSION) throw new Error(`drawing set version ${doc.format_version} is not supported`);
  if (!Array.isArray(doc.classes) || doc.classes.length < limits.minClasses || doc.classes.length > limits.maxClasses) {
    throw new Error(`a drawing set needs ${limits.minClasses} to ${limits.maxClasses} classes`);
  }
  const classes = doc.classes.map((c, i) => {
    const examples = (c.examples || []).map(unpackStrokes);
    if (examples.length < 1 || examples.length > limits.maxShots) throw new Error(`class ${i + 1}: 1 to ${limits.maxShots} examples`);
    return { name: String(c.name ?? `Class ${i + 1}`).slice(0, 60), examples };
  });
  const shots = Math.max(...classes.map((c) => c.examples.length));
  for (const c of classes) while (c.examples.length < shots) c.examples.push([]);
  const tests = (Array.isArray(doc.tests) ? doc.tests : []).map(unpackStrokes).slice(0, limits.maxTests);
  if (!tests.length) tests.push([]);
  const settings = typeof doc.settings === "object" && doc.settings ? doc.settings : {};
  return { classes, tests, settings: { ...settings, shots } };
}

function toBase64Url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const response = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await response.arrayBuffer());
}

// -> "z.<deflated base64url>" or "j.<base64url JSON>" (no CompressionStream)
export async function encodeFragment(doc) {
  const json = new TextEncoder().encode(JSON.stringify(doc));
  if (typeof CompressionStream !== "undefined") return `z.${toBase64Url(await pipe(json, new CompressionStream("deflate-raw")))}`;
  return `j.${toBase64Url(json)}`;
}

export async function decodeFragment(text) {
  const [kind, data] = [text.slice(0, 2), text.slice(2)];
  let bytes;
  if (kind === "z.") {
    if (typeof DecompressionStream === "undefined") throw new Error("this browser cannot read compressed links");
    bytes = await pipe(fromBase64Url(data), new DecompressionStream("deflate-raw"));
  } else if (kind === "j.") {
    bytes = fromBase64Url(data);
  } else {
    throw new Error("not a drawing link");
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}
