// Element helpers for the page's modules: $ (a query inside #demo), el (build an element), nextId.
import { root } from "./startup.js";

export const $ = (selector, parent = root) => parent.querySelector(selector);

// el("button", {type: "button", text: "Undo", onclick: undo}, ...children). Attributes that are null,
// undefined or false are left out and true ones set empty, so optional attributes read as one expression.
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

// Ids unique on the page, for the label and aria-describedby links of elements built at run time.
let lastId = 0;
export const nextId = (prefix) => `${prefix}-${++lastId}`;
