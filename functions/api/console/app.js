// The console's shell: the login form, the navigation and the routes (the part after `#`, which never leaves
// the browser).

import { api, apiKey, forgetKey, saveKey, whenUnauthorized } from "./api.js";
import { clear, h, heading } from "./dom.js";
import { renderCreate } from "./create.js";
import { renderEndpoints } from "./endpoints.js";
import { renderUsage } from "./usage.js";
import { renderVideo } from "./video.js";
import { renderVideos } from "./videos.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;

const ROUTES = [
  [/^#\/videos\/([^/]+)$/, (params) => renderVideo(main, decodeURIComponent(params[0]))],
  [/^#\/videos$/, () => renderVideos(main)],
  [/^#\/new$/, () => renderCreate(main)],
  [/^#\/endpoints$/, () => renderEndpoints(main)],
  [/^#\/usage$/, () => renderUsage(main)],
];

function stopView() {
  if (cleanup) cleanup();
  cleanup = null;
}

function route() {
  stopView();
  if (!apiKey()) {
    showLogin();
    return;
  }
  nav.hidden = false;
  const hash = location.hash || "#/videos";
  for (const link of nav.querySelectorAll("a")) {
    const here = hash === link.getAttribute("href") || hash.startsWith(`${link.getAttribute("href")}/`);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, view] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      cleanup = view(match.slice(1)) || null;
      focusTitle();
      return;
    }
  }
  location.replace("#/videos");
}

function focusTitle() {
  const title = main.querySelector(".page-title");
  if (title) title.focus({ preventScroll: false });
}

function showLogin(message) {
  nav.hidden = true;
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const problem = h("p", { id: "login-error", class: "error", role: "alert" }, message || "");
  problem.hidden = !message;
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "card login", novalidate: true },
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "Kept in this tab only (sessionStorage) and sent as the Authorization header. ",
      "Create one with ",
      h("code", null, "vidrelay keys create"),
      ".",
    ),
    problem,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      problem.textContent = "Paste an API key.";
      problem.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      // Any authenticated read checks the key; the catalog is the cheapest.
      await api("GET", "/models", { key });
      saveKey(key);
      input.value = "";
      if (!location.hash || location.hash === "#/login") location.hash = "#/videos";
      else route();
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  clear(main).append(heading("Log in to the vidrelay console"), form);
  input.focus();
}

whenUnauthorized((error) => {
  stopView();
  forgetKey();
  showLogin(error.message);
});

document.getElementById("logout").addEventListener("click", () => {
  forgetKey();
  route();
});

window.addEventListener("hashchange", route);
route();
