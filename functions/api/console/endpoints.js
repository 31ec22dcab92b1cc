// The tenant's webhook endpoints: create (the secret is shown once), rotate the secret, send a test, delete.

import { api } from "./api.js";
import { eventTypes } from "./create.js";
import { announce, clear, errorBox, h, heading, statusBadge, time } from "./dom.js";

export function renderEndpoints(main) {
  let stopped = false;
  const secretBox = h("div", { id: "secret", "aria-live": "polite" });
  const listBox = h("div", { id: "endpoints" });
  const formBox = h("div");
  clear(main).append(
    heading("Webhook endpoints"),
    h(
      "p",
      { class: "help" },
      "Every event of every video of this API key is sent, signed (Standard Webhooks), to each enabled endpoint.",
    ),
    secretBox,
    listBox,
    h("h2", null, "Add an endpoint"),
    formBox,
  );

  // A secret exists in the browser only while it is on screen: never stored, gone when dismissed.
  function showSecret(endpoint, what) {
    const copy = h("button", { type: "button", class: "quiet" }, "Copy");
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText(endpoint.secret);
      announce("Secret copied.");
    });
    const done = h("button", { type: "button" }, "I have saved it");
    done.addEventListener("click", () => secretBox.replaceChildren());
    secretBox.replaceChildren(
      h(
        "div",
        { class: "secret", role: "region", "aria-label": "Signing secret" },
        h("strong", null, `${what} — the signing secret of ${endpoint.url}, shown this once:`),
        h("code", { id: "secret-value" }, endpoint.secret),
        endpoint.secret_rotating_until
          ? h("p", { class: "help" }, "The previous secret also signs until ", time(endpoint.secret_rotating_until), ".")
          : null,
        h("div", { class: "toolbar" }, copy, done),
      ),
    );
    done.focus();
  }

  async function load() {
    try {
      const list = await api("GET", "/webhook_endpoints");
      if (!stopped) show(list.data);
    } catch (error) {
      if (!stopped) listBox.replaceChildren(errorBox(error));
    }
  }

  function show(endpoints) {
    if (!endpoints.length) {
      listBox.replaceChildren(h("p", { class: "help" }, "No endpoints yet."));
      return;
    }
    listBox.replaceChildren(...endpoints.map(card));
  }

  function card(endpoint) {
    const result = h("div", { "aria-live": "polite" });
    const rotate = h("button", { type: "button", class: "quiet" }, "Rotate secret");
    const test = h("button", { type: "button", class: "quiet" }, "Send test event");
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    rotate.addEventListener("click", async () => {
      if (!window.confirm(`Rotate the secret of ${endpoint.url}? The old one keeps signing for a day.`)) return;
      try {
        const rotated = await api("POST", `/webhook_endpoints/${encodeURIComponent(endpoint.id)}/rotate_secret`, {
          body: {},
        });
        showSecret(rotated, "Rotated");
        load();
      } catch (error) {
        result.replaceChildren(errorBox(error));
      }
    });
    test.addEventListener("click", async () => {
      test.disabled = true;
      try {
        const sent = await api("POST", `/webhook_endpoints/${encodeURIComponent(endpoint.id)}/test`);
        const answered = sent.status === null ? "no answer" : `HTTP ${sent.status}`;
        result.replaceChildren(
          h(
            "p",
            { class: sent.succeeded ? "ok test-result" : "error test-result" },
            `Test ${sent.succeeded ? "delivered" : "failed"}: ${answered} in ${sent.latency_ms} ms`,
            sent.error ? ` (${sent.error})` : "",
            ".",
          ),
        );
      } catch (error) {
        result.replaceChildren(errorBox(error));
      } finally {
        test.disabled = false;
      }
    });
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the endpoint ${endpoint.url}? Deliveries to it stop.`)) return;
      try {
        await api("DELETE", `/webhook_endpoints/${encodeURIComponent(endpoint.id)}`);
        announce(`Endpoint ${endpoint.url} deleted.`);
        load();
      } catch (error) {
        result.replaceChildren(errorBox(error));
      }
    });
    return h(
      "article",
      { class: "card endpoint", "data-id": endpoint.id },
      h("header", { class: "delivery-head" }, h("h3", { class: "wrap" }, endpoint.url), statusBadge(endpoint.status)),
      h(
        "p",
        { class: "help" },
        h("span", { class: "mono" }, endpoint.id),
        ` · ${endpoint.event_types.length ? endpoint.event_types.join(", ") : "every event"}`,
        " · created ",
        time(endpoint.created_at),
        endpoint.secret_rotating_until ? h("span", null, " · old secret signs until ", time(endpoint.secret_rotating_until)) : "",
      ),
      endpoint.description ? h("p", null, endpoint.description) : null,
      endpoint.disabled_reason ? h("p", { class: "error" }, endpoint.disabled_reason) : null,
      h("div", { class: "toolbar" }, rotate, test, remove),
      result,
    );
  }

  function form(events) {
    const url = h("input", { id: "endpoint-url", name: "url", type: "url", required: true, placeholder: "https://…" });
    const description = h("input", { id: "endpoint-description", name: "description", type: "text" });
    const types = h(
      "fieldset",
      { id: "endpoint-events" },
      h("legend", { class: "visually-hidden" }, "Event types"),
      events.map((type) =>
        h("label", null, h("input", { type: "checkbox", name: "event_types", value: type }), ` ${type}`),
      ),
    );
    const errors = {
      url: h("p", { class: "error", id: "endpoint-url-error" }),
      description: h("p", { class: "error", id: "endpoint-description-error" }),
      event_types: h("p", { class: "error", id: "endpoint-events-error" }),
    };
    url.setAttribute("aria-describedby", "endpoint-url-error");
    description.setAttribute("aria-describedby", "endpoint-description-error");
    const general = h("div", { role: "alert" });
    const submit = h("button", { type: "submit" }, "Add endpoint");
    const element = h(
      "form",
      { class: "grid card", id: "endpoint-form", novalidate: true },
      h("label", { for: "endpoint-url" }, "URL"),
      h("div", { class: "field" }, url, errors.url),
      h("label", { for: "endpoint-description" }, "Description"),
      h("div", { class: "field" }, description, errors.description),
      h("span", { class: "grid-label", "aria-hidden": "true" }, "Event types"),
      h("div", { class: "field" }, types, h("p", { class: "help" }, "None ticked: every event."), errors.event_types),
      h("div", { class: "form-actions" }, submit, general),
    );
    element.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const slot of Object.values(errors)) slot.textContent = "";
      general.replaceChildren();
      url.removeAttribute("aria-invalid");
      submit.disabled = true;
      try {
        const created = await api("POST", "/webhook_endpoints", {
          body: {
            url: url.value.trim(),
            description: description.value,
            event_types: [...types.querySelectorAll("input:checked")].map((box) => box.value),
          },
        });
        element.reset();
        showSecret(created, "Created");
        load();
      } catch (error) {
        const name = error.param ? error.param.split(/[.[]/)[0] : null;
        if (name && errors[name]) {
          errors[name].textContent = error.message;
          if (name === "url") {
            url.setAttribute("aria-invalid", "true");
            url.focus();
          }
        } else {
          general.replaceChildren(errorBox(error));
        }
      } finally {
        submit.disabled = false;
      }
    });
    return element;
  }

  eventTypes()
    .then((events) => {
      if (!stopped) formBox.replaceChildren(form(events));
    })
    .catch((error) => formBox.replaceChildren(errorBox(error)));
  load();
  return () => {
    stopped = true;
  };
}
