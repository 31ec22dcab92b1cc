// Elements are built node by node (never from HTML strings): the page's CSP enforces Trusted Types, so a
// string that reaches innerHTML is refused rather than run.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG, tag), attrs, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

// A page's heading takes the focus, so keyboard and screen-reader users land on the new content.
export function heading(text, level = 1) {
  return h(`h${level}`, { tabindex: "-1", class: "page-title" }, text);
}

export function time(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const date = new Date(seconds * 1000);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, formatTime(date));
}

function formatTime(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function usd(value) {
  if (value === null || value === undefined) return "—";
  const amount = Number(value);
  // Cents, unless a non-zero amount would read as $0.00.
  return `$${amount.toFixed(amount !== 0 && Math.abs(amount) < 0.01 ? 4 : 2)}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}` }, status.replace("_", " "));
}

let toastTimer = 0;

// Announced to assistive technology through the live region, and shown for a few seconds.
export function announce(message) {
  const region = document.getElementById("status");
  region.textContent = message;
  region.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => region.classList.remove("shown"), 4000);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

// A table that scrolls sideways inside itself on a narrow screen instead of widening the page.
export function table(caption, headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      attrs,
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", null, h("tr", null, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", null, rows),
    ),
  );
}
