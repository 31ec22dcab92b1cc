// A new video, from a form built from the catalog (GET /v1/models): each model's lengths, sizes, options and
// reference inputs. The API validates; its error names the field (`param`) and is shown beside that field.

import { api } from "./api.js";
import { announce, clear, errorBox, h, heading } from "./dom.js";

// The API's name for a field -> the form's: Veo and Seedance call the length `duration`.
const ALIASES = { duration: "seconds" };

export function renderCreate(main) {
  let stopped = false;
  const problem = h("div");
  const mount = h("div", null, h("p", { class: "help" }, "Loading the models…"));
  clear(main).append(heading("New video"), problem, mount);
  Promise.all([api("GET", "/models"), eventTypes()])
    .then(([models, events]) => {
      if (!stopped) mount.replaceChildren(form(models.data, events));
    })
    .catch((error) => problem.replaceChildren(errorBox(error)));
  return () => {
    stopped = true;
  };
}

// The event types, from the API's own document (the schema of an endpoint's event_types).
export async function eventTypes() {
  const response = await fetch(new URL("openapi.json", document.baseURI), { credentials: "omit" });
  const doc = await response.json();
  return doc.components.schemas.CreateEndpointBody.properties.event_types.items.enum;
}

function row(name, label, control, help) {
  const id = `f-${name}`;
  control.id = control.id || id;
  const error = h("p", { class: "error", id: `${id}-error`, "data-error-for": name });
  const described = [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
  if (control.matches("input, select, textarea")) control.setAttribute("aria-describedby", described);
  // A group of boxes is named by its own legend; the grid's left column repeats it for the eye.
  const caption =
    control.tagName === "FIELDSET"
      ? h("span", { class: "grid-label", "aria-hidden": "true" }, label)
      : h("label", { for: control.id }, label);
  return [
    caption,
    h(
      "div",
      { class: "field", "data-param": name },
      control,
      help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
      error,
    ),
  ];
}

function select(name, values, chosen, blank) {
  return h(
    "select",
    { name },
    blank ? h("option", { value: "" }, blank) : null,
    values.map((value) => h("option", { value, selected: value === chosen }, value)),
  );
}

function form(models, events) {
  const model = select(
    "model",
    models.map((m) => m.id),
    models[0].id,
  );
  const prompt = h("textarea", { name: "prompt", rows: "4", required: true });
  const modelHelp = h("span");
  const catalogRows = h("div", { class: "contents" });
  const webhook = h("input", { name: "webhook_url", type: "url", inputmode: "url", placeholder: "https://…" });
  const webhookEvents = h(
    "fieldset",
    { id: "f-webhook_events" },
    h("legend", { class: "visually-hidden" }, "Webhook events"),
    events.map((type) =>
      h("label", null, h("input", { type: "checkbox", name: "webhook_events", value: type }), ` ${type}`),
    ),
  );
  const metadata = h("textarea", {
    name: "metadata",
    rows: "3",
    placeholder: "customer=acme\norder=42",
    spellcheck: "false",
  });
  const formError = h("div", { role: "alert" });
  const submit = h("button", { type: "submit", id: "create" }, "Create video");
  const element = h(
    "form",
    { class: "grid card", id: "create-form", novalidate: true },
    row("model", "Model", model, modelHelp),
    row("prompt", "Prompt", prompt),
    catalogRows,
    row("webhook_url", "Webhook URL", webhook, "Signed events for this video are sent here (optional)."),
    row("webhook_events", "Webhook events", webhookEvents, "None ticked: every event."),
    row("metadata", "Metadata", metadata, "One key=value per line; echoed on the video and in its events."),
    h("div", { class: "form-actions" }, submit, formError),
  );
  // Rows in `contents` take part in the form's grid as if they were its own.
  catalogRows.classList.add("contents");

  function current() {
    return models.find((m) => m.id === model.value);
  }

  function showModel() {
    const spec = current();
    modelHelp.textContent = `${spec.description} (${spec.modes.join(", ")})`;
    const rows = [
      row("seconds", "Length (seconds)", select("seconds", spec.seconds.allowed, spec.seconds.default)),
      row("size", "Size", select("size", spec.size.allowed, spec.size.default)),
    ];
    for (const [name, values] of Object.entries(spec.options)) {
      rows.push(row(name, name, optionControl(name, values), optionHelp(values)));
    }
    for (const rule of spec.references) {
      const input = h("input", {
        type: "file",
        name: rule.field,
        accept: rule.formats.join(","),
        multiple: rule.count > 1,
        required: rule.required,
        "data-reference": "true",
      });
      const help =
        `${rule.formats.join(", ")}; up to ${rule.count} file${rule.count > 1 ? "s" : ""} of ` +
        `${Math.round(rule.max_bytes / 1048576)} MB${rule.required ? "; required" : " (optional)"}.`;
      rows.push(row(rule.field, `Reference: ${rule.field}`, input, help));
    }
    if (spec.references.some((rule) => rule.must_match_size)) {
      const fit = spec.references.find((rule) => rule.must_match_size).fit;
      rows.push(row("fit", "Fit the image", select("fit", fit, fit[0]), "How a reference image is made the video's size (sent with a reference only)."));
    }
    catalogRows.replaceChildren(...rows.flat());
  }

  function clearErrors() {
    formError.replaceChildren();
    for (const slot of element.querySelectorAll("[data-error-for]")) slot.textContent = "";
    for (const control of element.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  }

  // Beside the field the API named, else at the button.
  function showError(error) {
    const name = error.param ? error.param.split(/[.[]/)[0] : null;
    const slot = name && element.querySelector(`[data-error-for="${CSS.escape(ALIASES[name] || name)}"]`);
    if (!slot) {
      formError.replaceChildren(errorBox(error));
      submit.focus();
      return;
    }
    slot.textContent = error.message;
    const control = slot.parentElement.querySelector("input, select, textarea");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.focus();
    }
  }

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let body;
    try {
      body = request();
    } catch (error) {
      showError(error);
      return;
    }
    submit.disabled = true;
    try {
      // One key per press: a retried or doubled request cannot make two videos.
      const video = await api("POST", "/videos", {
        body,
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      announce(`${video.id} created.`);
      location.hash = `#/videos/${encodeURIComponent(video.id)}`;
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  });

  function request() {
    const fields = { model: model.value, prompt: prompt.value };
    const files = [...catalogRows.querySelectorAll("input[type=file]")].filter((input) => input.files.length);
    for (const control of catalogRows.querySelectorAll("select, input:not([type=file])")) {
      // `fit` says how a reference image is sized: sent only with one (the API refuses it alone).
      if (control.name === "fit" && !files.length) continue;
      if (control.value !== "") fields[control.name] = control.value;
    }
    if (webhook.value.trim()) fields.webhook_url = webhook.value.trim();
    const ticked = [...webhookEvents.querySelectorAll("input:checked")].map((box) => box.value);
    if (ticked.length) fields.webhook_events = ticked;
    const pairs = parseMetadata(metadata.value);
    if (pairs) fields.metadata = pairs;
    if (!files.length) return fields;
    // Reference files go as parts of a multipart body, as the OpenAI SDKs send them.
    const data = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (name === "metadata") for (const [key, item] of Object.entries(value)) data.append(`metadata[${key}]`, item);
      else if (Array.isArray(value)) for (const item of value) data.append(`${name}[]`, item);
      else data.append(name, value);
    }
    for (const input of files) for (const file of input.files) data.append(input.name, file, file.name);
    return data;
  }

  model.addEventListener("change", () => {
    clearErrors();
    showModel();
  });
  showModel();
  return element;
}

function optionControl(name, values) {
  if (values.length === 1 && values[0] === "*") return h("input", { name, type: "text" });
  if (values.length === 1 && values[0] === "int") return h("input", { name, type: "text", inputmode: "numeric" });
  return select(name, values, null, "(the model's default)");
}

function optionHelp(values) {
  if (values[0] === "*") return "Free text (optional).";
  if (values[0] === "int") return "An integer (optional).";
  return "Optional.";
}

function parseMetadata(text) {
  const pairs = {};
  const lines = text.split("\n").filter((line) => line.trim());
  for (const line of lines) {
    const at = line.indexOf("=");
    if (at <= 0) {
      const error = new Error(`Each metadata line is key=value; "${line.trim()}" is not.`);
      error.param = "metadata";
      throw error;
    }
    pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return lines.length ? pairs : null;
}
